"""The timed work: SGD training steps on a synthetic batch that lives on the device."""

from __future__ import annotations

import torch
from torch import nn

# autocast dtypes by cnnbench.options.PRECISIONS
DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def synthetic_batch(
    batch_size: int, device: torch.device, seed: int, channels_last: bool = False, num_classes: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded CIFAR-shaped batch, made on ``device`` before any clock starts."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, 32, 32, generator=generator)
    labels = torch.randint(num_classes, (batch_size,), generator=generator)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images.to(device), labels.to(device)


class TrainingStep:
    """Forward, cross-entropy, backward and an SGD-with-momentum update, in one precision."""

    def __init__(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, precision: str = "fp32"):
        self.model = model.train()
        self.images, self.labels = images, labels
        self.device_type = images.device.type
        self.dtype = DTYPES[precision]
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=precision == "fp16")
        self.loss = torch.zeros((), device=images.device)

    def __call__(self) -> None:
        with torch.autocast(self.device_type, dtype=self.dtype, enabled=self.dtype is not None):
            self.loss = nn.functional.cross_entropy(self.model(self.images), self.labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(self.loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self()
