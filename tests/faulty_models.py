"""Models that fail on purpose, added the way a user adds a model: ``-p faulty_models``.

Each misbehaves on rank 1 (the second process of a ``ddp`` group), or on the node marked
DOOMED_NODE, at its second forward pass: with one warmup step, that is the first step of the first
timed round.
"""

import os
import signal
import time

import torch
from torch import nn

from cnnbench.workload.models import register_model

DOOMED_NODE = "CNNBENCH_TEST_DOOMED_NODE"  # set for a test's second node: the node kills_its_node takes down


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
        if self.fault == "kill_node" and os.environ.get(DOOMED_NODE) and self.calls == 2:
            os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)  # its agent, and the cnnbench join that started it
        if self.fault in ("slow", "kill_node"):
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


@register_model
def kills_its_node(num_classes: int = 10) -> nn.Module:
    """On a node started with DOOMED_NODE set, the whole node dies at the first timed step."""
    return Faulty("kill_node", num_classes)
