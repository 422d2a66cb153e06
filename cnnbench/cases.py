"""One benchmark configuration: model config x wrapper x device set, with the run's sizes."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from cnnbench.devices import DeviceSet, parse_device_set
from cnnbench.wrappers import get_wrapper


@dataclass(frozen=True)
class Case:
    model: str
    batch_size: int  # global batch under strong scaling, per-device batch under weak
    precision: str
    channels_last: bool
    scaling: str
    wrapper: str
    devices: DeviceSet
    steps: int
    rounds: int
    warmup: int
    threads_per_device: int
    timeout: float
    seed: int = 0

    @property
    def model_config(self) -> str:
        """What speedups compare across: everything but the wrapper and the devices."""
        tags = ["cl"] if self.channels_last else []
        tags += ["weak"] if self.scaling == "weak" else []
        return "-".join([self.model, f"bs{self.batch_size}", self.precision, *tags])

    @property
    def id(self) -> str:
        return f"{self.model_config}-{self.wrapper}-{self.devices}"

    @property
    def global_batch(self) -> int:
        return sum(self.device_batches)

    @property
    def device_batches(self) -> list[int]:
        """Images per device; a strong-scaling batch splits like DataParallel's scatter (43/43/42)."""
        n = len(self.devices)
        if self.scaling == "weak":
            return [self.batch_size] * n
        chunk = -(-self.batch_size // n)
        return [min(chunk, self.batch_size - i * chunk) for i in range(n)]

    @property
    def world_size(self) -> int:
        """Processes in the worker group."""
        return len(self.devices) if get_wrapper(self.wrapper).process_per_device else 1

    @property
    def cores(self) -> list[list[int]]:
        return self.devices.cores(self.threads_per_device) if self.devices.kind == "cpu" else []

    def unavailable(self) -> str | None:
        """Why this machine cannot run the case (a skip reason), or None."""
        wrapper = get_wrapper(self.wrapper)
        if self.devices.kind not in wrapper.kinds:
            return f"{self.wrapper} runs on {', '.join(wrapper.kinds)} devices only, not {self.devices}"
        return self.devices.unavailable(self.threads_per_device)

    def extra_info(self) -> dict:
        info = {
            "model_config": self.model_config,
            "model": self.model,
            "wrapper": self.wrapper,
            "devices": self.devices.devices,
            "device_set": str(self.devices),
            "world_size": len(self.devices),
            "global_batch": self.global_batch,
            "per_device_batch": self.device_batches,
            "steps_per_round": self.steps,
            "warmup_steps": self.warmup,
            "precision": self.precision,
            "channels_last": self.channels_last,
            "scaling": self.scaling,
        }
        if self.devices.kind == "cpu":
            info["threads_per_rank"] = self.threads_per_device
        return info

    def to_json(self) -> str:
        fields = dataclasses.asdict(self)
        fields["devices"] = str(self.devices)
        return json.dumps(fields)

    @classmethod
    def from_json(cls, text: str) -> Case:
        fields = json.loads(text)
        fields["devices"] = parse_device_set(fields["devices"])
        return cls(**fields)
