"""CPU devices that differ, as the GPUs of a mixed set do: loaded like a user's model module
(``-p core_named``), it makes every process name its CPU device by its own cores, so ``cpu:0`` and
``cpu:1`` report different names, and registers a model that computes twice per step on any cores
but the first, so ``cpu:1`` is a device half as fast as ``cpu:0``, steadily (a busy process sharing
the core slows it by whatever share the scheduler gives it from moment to moment).
"""

import os

import torch
from torch import nn

from cnnbench.devices import CpuKind
from cnnbench.models import register_model


def _by_cores(self, device) -> str:
    return f"CPU cores {sorted(os.sched_getaffinity(0))}"


CpuKind.describe = _by_cores


class SlowerOnLaterCores(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        times = 1 if 0 in os.sched_getaffinity(0) else 2
        return sum(self.model(x) for _ in range(times)) / times


@register_model
def core_named_mlp(num_classes: int = 10) -> nn.Module:
    """Steps of a few milliseconds that are nearly all forward and backward: many fit in a round."""
    return SlowerOnLaterCores(
        nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 1024), nn.ReLU(), nn.Linear(1024, num_classes))
    )
