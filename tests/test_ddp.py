"""DDP as cnnbench wraps it computes the same SGD step as one process on the whole batch."""

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from cnnbench.data import SyntheticBatches
from cnnbench.step import TrainingStep
from cnnbench.wrappers import get_wrapper


def small_net() -> nn.Module:
    # No BatchNorm: its per-rank batch statistics differ from the whole batch's by design.
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, 10)
    )


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(8, 3, 32, 32, generator=generator), torch.randint(10, (8,), generator=generator)


def ddp_rank(rank: int, store_path: str, out_path: str) -> None:
    store = dist.FileStore(store_path, 2)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=2)
    images, labels = batch()
    half = slice(rank * 4, rank * 4 + 4)
    model = get_wrapper("ddp").wrap(small_net(), [torch.device("cpu")])
    TrainingStep(model, torch.device("cpu")).run(2, SyntheticBatches(images[half], labels[half]))
    if rank == 0:
        torch.save(model.module.state_dict(), out_path)
    dist.destroy_process_group()


def test_two_gloo_ranks_match_one_process(tmp_path):
    mp.spawn(ddp_rank, args=(str(tmp_path / "store"), str(tmp_path / "ddp.pt")), nprocs=2)
    model = small_net()
    TrainingStep(model, torch.device("cpu")).run(2, SyntheticBatches(*batch()))
    ddp_state = torch.load(tmp_path / "ddp.pt", weights_only=True)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(ddp_state[name], tensor, rtol=1e-5, atol=1e-6, msg=name)
    assert not torch.equal(ddp_state["4.weight"], small_net().state_dict()["4.weight"])  # it did train
