"""The run's settings: the options read once into a frozen ``Settings``, and its cases."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from cnnbench.machine.devices import DEVICE_KINDS, DeviceSet, auto_device_sets, class_kind, usable_cores
from cnnbench.machine.network import Endpoint
from cnnbench.settings.cases import Case
from cnnbench.settings.gate import MIN_ROUNDS, Gate
from cnnbench.settings.options import PROFILES, OptionError, read
from cnnbench.workload.data import DataSource
from cnnbench.workload.wrappers import get_wrapper, list_wrappers


@dataclass(frozen=True)
class Settings:
    profile: str
    models: tuple[str, ...]
    devices: tuple[DeviceSet, ...]
    wrappers: tuple[str, ...]
    batch_size: int  # the option's value: global batch (strong scaling) or per-device batch (weak)
    scaling: str
    steps: int
    rounds: int
    warmup: int
    precision: str
    channels_last: bool
    compile: bool
    timeout: float
    rdzv: Endpoint | None = None  # where a multi-node run's nodes meet: an address of this machine
    data: DataSource = field(default_factory=DataSource)
    epochs: int = 0  # whole epochs timed after the rounds; 0: an epoch's time is derived
    speedup_fail: float | None = None
    min_efficiency: float | None = None
    min_busbw: float | None = None
    history_fail: float | None = None
    accept_level: bool = False
    compare_any_hardware: bool = False
    require_baseline: bool = False
    new_hardware: bool = False
    report: Path | None = None
    plot: Path | None = None
    verdict_json: Path | None = None

    @property
    def kind(self) -> str:
        """The device kind whose hardware class keys the baselines: an accelerator if any set uses one."""
        return class_kind(s.kind for s in self.devices)

    @property
    def gate(self) -> Gate:
        return Gate(self.speedup_fail, self.min_efficiency, self.min_busbw, self.history_fail)

    @classmethod
    def from_values(cls, values: dict[str, str | None], where: dict[str, str] | None = None) -> Settings:
        """``values`` maps option names to raw text (None: not given); raises OptionError."""
        parsed = read(values, where)
        profile = parsed.get("profile") or ("seed" if torch.cuda.device_count() > 0 else "quick")
        parsed = {**PROFILES[profile], **parsed, "profile": profile}
        parsed.setdefault("wrappers", tuple(list_wrappers()))
        if parsed["devices"] == "auto":
            most = parsed["batch_size"] if parsed.get("scaling") == "strong" else None
            parsed["devices"] = tuple(auto_device_sets(most))
        return cls(**parsed)

    def __post_init__(self) -> None:
        for devices in self.devices:
            if self.scaling == "strong" and self.batch_size < len(devices):
                raise OptionError(
                    f"--cnnbench-batch-size: a global batch of {self.batch_size} cannot be split "
                    f"over the {len(devices)} devices of {devices}; valid: at least {len(devices)}"
                )
            if self.data.reads and self._global_batch(devices) > self.data.train_images:
                raise OptionError(
                    f"--cnnbench-batch-size: a global batch of {self._global_batch(devices)} on {devices} is more "
                    f"than the {self.data.train_images} training images of {self.data}; valid: at most that"
                )
        if self.nodes > 1 and self.rdzv is None:
            spanning = next(s for s in self.devices if s.nodes > 1)
            raise OptionError(
                f"--cnnbench-devices: {spanning} spans {spanning.nodes} nodes; valid: with "
                "--cnnbench-rdzv=HOST:PORT, an address of this machine that the other nodes reach"
            )
        if self.epochs and not self.data.reads:
            raise OptionError(
                "--cnnbench-epochs: synthetic data has no epochs; valid: with --cnnbench-data=cifar10:PATH"
            )
        if self.speedup_fail is not None and self.history_fail is not None:
            raise OptionError(
                "--cnnbench-history-fail: judges against the history's protected level instead of one baseline; "
                "valid: without --cnnbench-speedup-fail"
            )
        if self.gate.judges_speedup and self.rounds < MIN_ROUNDS:
            raise OptionError(
                f"--cnnbench-rounds: {self.rounds} rounds cannot be judged by the gate; valid: at least {MIN_ROUNDS}"
            )

    @property
    def nodes(self) -> int:
        """The most nodes a set of the run spans."""
        return max(s.nodes for s in self.devices)

    @property
    def threads_per_device(self) -> int:
        """Every pinned device gets the same share: the usable cores over the largest such set."""
        largest = max((len(s.indices) for s in self.devices if DEVICE_KINDS[s.kind].pinned), default=1)
        return max(1, len(usable_cores()) // largest)

    def cases(self) -> list[Case]:
        """Every meaningful (model, wrapper, device set), the reference first in each model config."""
        cases = []
        for model in self.models:
            for wrapper in self.wrappers:
                for devices in self.devices:
                    if get_wrapper(wrapper).fits(len(devices)):
                        cases.append(self._case(model, wrapper, devices))
        return sorted(cases, key=lambda c: (self.models.index(c.model), not get_wrapper(c.wrapper).is_reference))

    def _global_batch(self, devices: DeviceSet) -> int:
        return self.batch_size * len(devices) if self.scaling == "weak" else self.batch_size

    def _case(self, model: str, wrapper: str, devices: DeviceSet) -> Case:
        return Case(
            model=model,
            global_batch=self._global_batch(devices),
            precision=self.precision,
            channels_last=self.channels_last,
            scaling=self.scaling,
            wrapper=wrapper,
            devices=devices,
            steps=self.steps,
            rounds=self.rounds,
            warmup=self.warmup,
            threads_per_device=self.threads_per_device,
            timeout=self.timeout,
            data=self.data,
            compile=self.compile,
        )
