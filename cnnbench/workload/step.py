"""The timed work: SGD training steps, on batches from a ``cnnbench.workload.data.Batches`` source."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from cnnbench.workload.data import Batches

# autocast dtypes by cnnbench.settings.options.PRECISIONS
DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class TrainingStep:
    """Forward, cross-entropy, backward and an SGD-with-momentum update, in one precision."""

    def __init__(self, model: nn.Module, device: torch.device, precision: str = "fp32"):
        self.model = model.train()
        self.device_type = device.type
        self.dtype = DTYPES[precision]
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=precision == "fp16")
        self.loss = torch.zeros((), device=device)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        with torch.autocast(self.device_type, dtype=self.dtype, enabled=self.dtype is not None):
            self.loss = nn.functional.cross_entropy(self.model(images), labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(self.loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def run(self, steps: int, batches: Batches) -> None:
        for _ in range(steps):
            self(*batches.next())
