"""Models that fail on purpose, added the way a user adds a model: ``-p faulty_models``.

Each misbehaves on rank 1 (the second process of a ``ddp`` group) at its second forward pass:
with one warmup step, that is the first step of the first timed round.
"""

import os
import signal
import time

import torch
from torch import nn

from cnnbench.models import register_model


class Faulty(nn.Module):
    def __init__(self, fault: str, num_classes: int = 10):
        super().__init__()
        self.fault = fault
        self.calls = 0
        self.fc = nn.Linear(3 * 32 * 32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if os.environ.get("RANK") == "1" and self.calls == 2:
            if self.fault == "raise":
                raise RuntimeError("simulated CUDA out of memory")
            if self.fault == "hang":
                time.sleep(3600)
            if self.fault == "segfault":
                os.kill(os.getpid(), signal.SIGSEGV)
        if self.fault == "slow":
            time.sleep(0.2)
        return self.fc(x.flatten(1))


@register_model
def raises_on_rank1(num_classes: int = 10) -> nn.Module:
    return Faulty("raise", num_classes)


@register_model
def hangs_on_rank1(num_classes: int = 10) -> nn.Module:
    return Faulty("hang", num_classes)


@register_model
def segfaults_on_rank1(num_classes: int = 10) -> nn.Module:
    return Faulty("segfault", num_classes)


@register_model
def slow_linear(num_classes: int = 10) -> nn.Module:
    return Faulty("slow", num_classes)
