"""CPU devices that differ, as the GPUs of a mixed set do: loaded like a user's model module
(``-p core_named``), it makes every process name its CPU device by its own cores, so ``cpu:0`` and
``cpu:1`` report different names, and registers a model for the ranks to import it by.
"""

import os

from torch import nn

from cnnbench.devices import CpuKind
from cnnbench.models import create_model, register_model


def _by_cores(self, device) -> str:
    return f"CPU cores {sorted(os.sched_getaffinity(0))}"


CpuKind.describe = _by_cores


@register_model
def core_named_cnn(num_classes: int = 10) -> nn.Module:
    return create_model("googlenet_cifar_small", num_classes=num_classes)
