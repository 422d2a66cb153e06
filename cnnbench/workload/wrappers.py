"""Parallel wrappers by name: how a model is spread over a device set, the batch with it, and how
the wrapped model is compiled (``--cnnbench-compile``).

Adding one is one ``register_wrapper`` call, in this module or a user's own: ranks import the
module that registered the wrapper, as they do for models.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def even_split(batch: int, devices: int) -> list[int]:
    """``batch // devices`` images per device, the first ``batch % devices`` one more: 128 over 3 is 43/43/42."""
    share, extra = divmod(batch, devices)
    return [share + 1] * extra + [share] * (devices - extra)


def chunk_split(batch: int, devices: int) -> list[int]:
    """What DataParallel's scatter does (``torch.chunk``): chunks of ceil(batch / devices) images
    while they last, so 32 over 12 devices is ten chunks of 3 and one of 2, and one device gets none."""
    chunk = -(-batch // devices)
    return [min(chunk, batch - start) for start in range(0, batch, chunk)]


def compile_whole(wrapped: nn.Module) -> nn.Module:
    """``torch.compile`` of the wrapped model. Under DDP, dynamo's DDPOptimizer splits the graph at
    DDP's bucket boundaries, so one bucket's all-reduce overlaps the backward of the next (no
    ``fullgraph``: the splits are graph breaks). Shapes never change in a benchmark: static graphs."""
    return torch.compile(wrapped, dynamic=False)


def compiled_graphs() -> int:
    """Graphs torch.compile has captured in this process so far, by dynamo's own count (0: every
    frame ran eagerly, e.g. a model whose forward is torch.nn's own code, which dynamo does not
    start tracing at, under DDP)."""
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


@dataclass(frozen=True)
class Wrapper:
    name: str
    wrap: Callable[[nn.Module, list[torch.device]], nn.Module]
    process_per_device: bool  # one rank per device (torch.distributed) or one process for the set
    min_devices: int = 1
    max_devices: int | None = None
    kinds: tuple[str, ...] = ("cuda", "cpu")
    is_reference: bool = False  # what speedups are measured against: one device, no wrapper
    split: Callable[[int, int], list[int]] = even_split  # images per device, from the global batch
    split_rule: str = "an even split"  # for people, in a skip reason
    # the wrapped model's gradient all-reduce buckets, in bytes, timed after the rounds; None: no all-reduce
    buckets: Callable[[nn.Module], list[int]] | None = None
    # --cnnbench-compile: the wrapped model, compiled; None where the wrapper cannot be, and ``no_compile`` says why
    compile: Callable[[nn.Module], nn.Module] | None = compile_whole
    no_compile: str = ""
    # why this environment cannot run the wrapper at all (a skip reason), or None
    unavailable: Callable[[], str | None] = lambda: None

    def fits(self, size: int) -> bool:
        """Whether a set of ``size`` devices is a meaningful configuration for this wrapper."""
        return self.min_devices <= size and (self.max_devices is None or size <= self.max_devices)


_WRAPPERS: dict[str, Wrapper] = {}


def register_wrapper(wrapper: Wrapper) -> Wrapper:
    _WRAPPERS[wrapper.name] = wrapper
    return wrapper


def wrapper_module(name: str) -> str:
    """The module that defines ``name``'s wrap function: worker processes import it before wrapping."""
    return get_wrapper(name).wrap.__module__


def is_reference(name: str) -> bool:
    """Whether ``name`` is the reference wrapper; False for one this environment does not register."""
    return name in _WRAPPERS and _WRAPPERS[name].is_reference


def reference_wrapper() -> Wrapper:
    return next(w for w in _WRAPPERS.values() if w.is_reference)


def list_wrappers() -> list[str]:
    return list(_WRAPPERS)


def get_wrapper(name: str) -> Wrapper:
    if name not in _WRAPPERS:
        raise ValueError(f"unknown wrapper {name!r}; valid wrappers: {', '.join(_WRAPPERS)}")
    return _WRAPPERS[name]


def _data_parallel(model: nn.Module, devices: list[torch.device]) -> nn.Module:
    return nn.DataParallel(model, device_ids=[d.index for d in devices])


# BatchNorm running statistics never enter a training step's arithmetic, so their broadcast at
# every forward (a blocking collective) is skipped, as in most DDP training recipes. The flag was
# renamed in torch 2.13.
_NO_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    else {"broadcast_buffers": False}
)


def _distributed(model: nn.Module, devices: list[torch.device]) -> nn.Module:
    device_ids = [devices[0].index] if devices[0].type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids, gradient_as_bucket_view=True, **_NO_BUFFER_SYNC)


def _ddp_buckets(model: nn.Module) -> list[int]:
    """The bucket sizes DDP reduces gradients in, as rebuilt after the first step (1 MiB first,
    then up to ``bucket_cap_mb``). Read from DDP's logging data, a private API: where it lacks
    them, the whole gradient as one bucket."""
    data = getattr(model, "_get_ddp_logging_data", dict)()
    sizes = data.get("rebuilt_bucket_sizes") or data.get("bucket_sizes")
    if isinstance(sizes, str) and sizes:
        return [int(size) for size in sizes.split(",")]
    return [sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)]


register_wrapper(
    Wrapper("single", lambda model, devices: model, process_per_device=False, max_devices=1, is_reference=True)
)
register_wrapper(
    Wrapper(
        "dp",
        _data_parallel,
        process_per_device=False,
        min_devices=2,
        kinds=("cuda",),
        split=chunk_split,
        split_rule="DataParallel's scatter (chunks of ceil(batch / devices))",
        compile=None,
        no_compile="DataParallel replicates the module every step and runs the replicas in threads, which "
        "torch.compile does not speed up on several devices (pytorch#94636); compile ddp instead",
    )
)
register_wrapper(Wrapper("ddp", _distributed, process_per_device=True, buckets=_ddp_buckets))


def _fully_shard() -> Callable[..., nn.Module] | None:
    """FSDP2's ``fully_shard``: public in ``torch.distributed.fsdp`` since torch 2.6, before that in
    ``torch.distributed._composable.fsdp``; None where torch has neither."""
    if not dist.is_available():
        return None
    try:
        from torch.distributed.fsdp import fully_shard
    except ImportError:
        try:
            from torch.distributed._composable.fsdp import fully_shard
        except ImportError:
            return None
    return fully_shard


def _fsdp_unavailable() -> str | None:
    if _fully_shard() is None:
        return f"fsdp needs FSDP2 (torch.distributed.fsdp.fully_shard); torch {torch.__version__} has none"
    return None


_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def blocks(model: nn.Module) -> list[nn.Module]:
    """The units FSDP shards one by one, bottom-up before the root: every child module that holds
    parameters, looking through plain containers (exactly ``nn.Sequential``, ``ModuleList`` or
    ``ModuleDict``; a subclass such as ``ConvBNReLU`` is a unit). GoogLeNet: the stem, the nine
    Inception blocks and the classifier; ResNet: the stem's conv and BN, eight BasicBlocks, fc."""
    found = []
    for child in model.children():
        if type(child) in _CONTAINERS:
            found += blocks(child)
        elif next(child.parameters(), None) is not None:
            found.append(child)
    return found


def _fully_sharded(model: nn.Module, devices: list[torch.device]) -> nn.Module:
    """FSDP2 over every rank: each block, then the root. Each block's parameters are all-gathered
    before its forward and again before its backward, and freed after (ZeRO-3); gradients are
    reduce-scattered, averaged over the ranks like DDP's all-reduce. BatchNorm running statistics
    stay per rank, as with the suite's DDP: they take no part in a training step's arithmetic."""
    from torch.distributed.device_mesh import init_device_mesh

    fully_shard = _fully_shard()
    # An explicit mesh of the rank's own device kind: the default follows the accelerator, which
    # puts a gloo group of CPU ranks on CUDA on a GPU host (pytorch#132471).
    mesh = init_device_mesh(devices[0].type, (dist.get_world_size(),))
    for block in blocks(model):
        fully_shard(block, mesh=mesh)
    return fully_shard(model, mesh=mesh)


def _compile_blocks(wrapped: nn.Module) -> nn.Module:
    """Each FSDP block's forward compiled on its own, after sharding: one static graph per block
    and no graph break inside it, FSDP's all-gather and reshard hooks running eagerly between
    blocks; the root's own glue (GoogLeNet's max-pools) stays eager. Compiling the whole sharded
    model instead breaks the graph at every FSDP hook, leaves blocks whose forward is torch.nn's
    own code (the stem, the classifier) uncompiled, and runs the ninth Inception block eagerly:
    blocks of one class share a code object, whose compiled versions dynamo caps at
    ``recompile_limit`` (8), a limit raised here to the number of blocks."""
    from torch._dynamo import config

    units = blocks(wrapped) or [wrapped]
    config.recompile_limit = max(config.recompile_limit, len(units))
    for unit in units:
        unit.forward = torch.compile(unit.forward, dynamic=False)
    return wrapped


register_wrapper(
    Wrapper(
        "fsdp",
        _fully_sharded,
        process_per_device=True,
        compile=_compile_blocks,
        unavailable=_fsdp_unavailable,
    )
)
