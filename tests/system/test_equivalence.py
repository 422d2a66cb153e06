"""Each distributed wrapper, eager and compiled, computes the same SGD steps as one process on the
whole batch: the same loss at every step and the same weights after, within a stated tolerance.

One pair of gloo ranks runs every selected path in turn (starting ranks costs more than their
steps); ``single`` runs on rank 0 alone, on the whole batch.
"""

from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.distributed.tensor import DTensor

from cnnbench.workload.data import SyntheticBatches
from cnnbench.workload.step import TrainingStep
from cnnbench.workload.wrappers import compiled_graphs, get_wrapper

STEPS, RANKS, IMAGES = 3, 2, 8
# Eager, the ranks' gradients are summed in another order than one process sums them. Compiled,
# inductor also fuses and reorders the float arithmetic of forward and backward, differently on
# other CPUs (vector widths). Measured on a 2-core Xeon: at most 2.4e-7 in a loss, 5e-8 in a weight.
EAGER = {"rtol": 1e-5, "atol": 1e-6}
COMPILED = {"rtol": 1e-4, "atol": 1e-5}
PATHS = {  # test id: wrapper, compiled
    "ddp": ("ddp", False),
    "fsdp": ("fsdp", False),
    "single-compiled": ("single", True),
    "ddp-compiled": ("ddp", True),
    "fsdp-compiled": ("fsdp", True),
}


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


class SmallNet(nn.Module):
    """Two FSDP blocks (the conv block, the classifier) and the root. No BatchNorm: its per-rank
    batch statistics differ from the whole batch's by design. A forward of its own: torch.compile
    under ddp starts tracing there (it does not in nn.Sequential's)."""

    def __init__(self) -> None:
        super().__init__()
        self.block = Block()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.block(x)).flatten(1))


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return SmallNet()


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(IMAGES, 3, 32, 32, generator=generator), torch.randint(10, (IMAGES,), generator=generator)


def train(wrapper: str, compiled: bool, rank: int, ranks: int) -> dict:
    """The wrapper's model on this rank's share of the batch, built as the worker builds it: the
    whole batch's loss at each step, the full weights after, and the graphs it compiled."""
    images, labels = batch()
    share = slice(rank * IMAGES // ranks, (rank + 1) * IMAGES // ranks)
    model = small_net()
    graphs = compiled_graphs()
    wrapped = get_wrapper(wrapper).wrap(model, [torch.device("cpu")])
    if compiled:
        wrapped = get_wrapper(wrapper).compile(wrapped)
    step, batches = TrainingStep(wrapped, torch.device("cpu")), SyntheticBatches(images[share], labels[share])
    losses = []
    for _ in range(STEPS):
        step.run(1, batches)
        loss = step.loss.detach().clone()
        if ranks > 1:
            dist.all_reduce(loss)  # equal shares: the mean of the ranks' means is the whole batch's
        losses.append(loss.item() / ranks)
    state = {k: v.full_tensor() if isinstance(v, DTensor) else v for k, v in model.state_dict().items()}
    return {"losses": losses, "state": state, "graphs": compiled_graphs() - graphs}


def rank_main(rank: int, paths: list[str], store_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    store = dist.FileStore(store_path, RANKS)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=RANKS, timeout=timedelta(seconds=120))
    results = {}
    for path in paths:
        wrapper, compiled = PATHS[path]
        if get_wrapper(wrapper).process_per_device:
            results[path] = train(wrapper, compiled, rank, RANKS)
        elif rank == 0:
            results[path] = train(wrapper, compiled, 0, 1)
    if rank == 0:
        torch.save(results, out_path)
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(request, tmp_path_factory) -> dict:
    """What rank 0 saw on each path that a selected test checks."""
    selected = {item.callspec.params["path"] for item in request.session.items if item.module is request.module}
    paths = [path for path in PATHS if path in selected]
    folder = tmp_path_factory.mktemp("ranks")
    mp.spawn(rank_main, args=(paths, str(folder / "store"), str(folder / "out.pt")), nprocs=RANKS)
    return torch.load(folder / "out.pt", weights_only=True)


@pytest.mark.parametrize(
    "path", [pytest.param(path, marks=[pytest.mark.compiles] * compiled) for path, (_, compiled) in PATHS.items()]
)
def test_ranks_match_one_plain_process(ranks, path):
    model = small_net()
    step, batches = TrainingStep(model, torch.device("cpu")), SyntheticBatches(*batch())
    losses = []
    for _ in range(STEPS):
        step.run(1, batches)
        losses.append(step.loss.item())
    saved, compiled = ranks[path], PATHS[path][1]
    tolerance = COMPILED if compiled else EAGER
    torch.testing.assert_close(saved["losses"], losses, **tolerance)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(saved["state"][name], tensor, **tolerance, msg=name)
    assert not torch.equal(saved["state"]["fc.weight"], small_net().state_dict()["fc.weight"])  # it did train
    assert (saved["graphs"] > 0) == compiled  # compiled for real, not run eagerly behind torch.compile
