"""Parallel wrappers by name: how a model is spread over a device set, and the batch with it.

Adding one (FSDP, compiled DDP) is one ``register_wrapper`` call, in this module or a user's own:
ranks import the module that registered the wrapper, as they do for models.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
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
    )
)
register_wrapper(Wrapper("ddp", _distributed, process_per_device=True, buckets=_ddp_buckets))
