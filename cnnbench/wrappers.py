"""Parallel wrappers by name: how a model is spread over a device set.

Adding one (FSDP, compiled DDP) is one ``register_wrapper`` call.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Wrapper:
    name: str
    wrap: Callable[[nn.Module, list[torch.device]], nn.Module]
    process_per_device: bool  # one rank per device (torch.distributed) or one process for the set
    min_devices: int = 1
    max_devices: int | None = None
    kinds: tuple[str, ...] = ("cuda", "cpu")

    def fits(self, size: int) -> bool:
        """Whether a set of ``size`` devices is a meaningful configuration for this wrapper."""
        return self.min_devices <= size and (self.max_devices is None or size <= self.max_devices)


_WRAPPERS: dict[str, Wrapper] = {}


def register_wrapper(wrapper: Wrapper) -> Wrapper:
    _WRAPPERS[wrapper.name] = wrapper
    return wrapper


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


register_wrapper(Wrapper("single", lambda model, devices: model, process_per_device=False, max_devices=1))
register_wrapper(Wrapper("dp", _data_parallel, process_per_device=False, min_devices=2, kinds=("cuda",)))
register_wrapper(Wrapper("ddp", _distributed, process_per_device=True))
