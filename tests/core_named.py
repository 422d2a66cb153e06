"""CPU devices that differ, as the GPUs of a mixed set do: loaded like a user's model module
(``-p core_named``), it makes every process name its CPU device by its own cores, so ``cpu:0`` and
``cpu:1`` report different names, and registers a model whose step takes twice as long on any
cores but the first, so ``cpu:1`` is a device half as fast as ``cpu:0``.

The step's time is mostly a fixed wait (a small layer, then a sleep per forward pass): a device
made slower by a busy core, or by computing twice, ran at a speed that drifted with this shared
machine's load by more than the 20% within which a test compares measurements taken a minute apart.
"""

import os
import time

import torch
from torch import nn

from cnnbench.machine.devices import CpuKind
from cnnbench.workload.models import register_model

STEP_SECONDS = 0.01  # a step's wait on the first core; twice this on the others


def _by_cores(self, device) -> str:
    return f"CPU cores {sorted(os.sched_getaffinity(0))}"


CpuKind.describe = _by_cores


class SlowerOnLaterCores(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(STEP_SECONDS if 0 in os.sched_getaffinity(0) else 2 * STEP_SECONDS)
        return self.fc(x.flatten(1))


@register_model
def core_named_waits(num_classes: int = 10) -> nn.Module:
    return SlowerOnLaterCores(num_classes)
