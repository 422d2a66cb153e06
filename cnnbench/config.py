"""Options, read once into a frozen ``Settings``, and the profiles that give their defaults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cnnbench.cases import Case
from cnnbench.devices import DeviceSet, auto_device_sets, parse_device_set, usable_cores
from cnnbench.models import list_models
from cnnbench.step import PRECISIONS
from cnnbench.wrappers import get_wrapper, list_wrappers

PROFILES: dict[str, dict[str, Any]] = {
    # The reference workload: GoogLeNet (CIFAR variant) at a global batch of 128.
    "seed": {"models": ("googlenet_cifar",), "batch_size": 128, "steps": 20, "rounds": 5, "warmup": 5},
    # A CPU-sized proxy: the same architecture at 1/4 width, short enough for every CI run.
    "quick": {"models": ("googlenet_cifar_small",), "batch_size": 32, "steps": 4, "rounds": 6, "warmup": 2},
}
SCALINGS = ("strong", "weak")


class OptionError(ValueError):
    """A bad option value; the message names the option and what is valid."""


def _names(valid: Callable[[], list[str]]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(text.replace(",", " ").split())
        for name in names or ("",):
            if name not in valid():
                raise ValueError(f"unknown {name!r}; valid: {', '.join(valid())}")
        return names

    return parse


def _choice(valid: tuple[str, ...] | list[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in valid:
            raise ValueError(f"unknown {text!r}; valid: {', '.join(valid)}")
        return text

    return parse


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.strip().isdigit() or int(text) < minimum:
            raise ValueError(f"got {text!r}; valid: a whole number >= {minimum}")
        return int(text)

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"got {text!r}; valid: a number of seconds > 0")
    return value


def _devices(text: str) -> tuple[DeviceSet, ...] | str:
    if text.strip() == "auto":
        return "auto"
    sets = tuple(parse_device_set(part) for part in text.split())
    if not sets:
        raise ValueError("empty; valid: space-separated sets such as 'cuda:0 cuda:0,1', or auto")
    return sets


def _share(text: str) -> float:
    """``20%`` or ``0.2``."""
    number = text.strip()
    try:
        value = float(number.removesuffix("%")) / (100 if number.endswith("%") else 1)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise ValueError(f"got {text!r}; valid: a percentage such as 20% or a fraction such as 0.2, in (0, 1]")
    return value


def _path(text: str) -> Path:
    if not text.strip():
        raise ValueError("empty; valid: a file path")
    return Path(text)


def flag(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"got {text!r}; valid: true or false")


@dataclass(frozen=True)
class Option:
    name: str  # --cnnbench-<name>, ini key cnnbench_<name with _>
    parse: Callable[[str], Any]
    help: str
    default: str | None = None  # None: the profile's value

    @property
    def flag(self) -> str:
        return f"--cnnbench-{self.name}"

    @property
    def ini(self) -> str:
        return "cnnbench_" + self.name.replace("-", "_")


OPTIONS = [
    Option(
        "profile",
        _choice(tuple(PROFILES)),
        "workload profile: seed (GoogLeNet CIFAR, batch 128) or quick "
        "(1/4-width GoogLeNet, batch 32) (default: seed with CUDA, else quick)",
    ),
    Option(
        "models",
        _names(list_models),
        f"comma-separated models (default: the profile's; valid: {', '.join(list_models())})",
    ),
    Option(
        "devices",
        _devices,
        "space-separated device sets, e.g. 'cuda:0 cuda:0,1,2' or 'cpu:0 cpu:0,1', or auto "
        "(default: auto = 1, 2, 4, ... and all GPUs, else CPU sets up to the usable cores)",
        "auto",
    ),
    Option(
        "wrappers",
        _names(list_wrappers),
        f"comma-separated parallel wrappers (default: all; valid: {', '.join(list_wrappers())})",
        ",".join(list_wrappers()),
    ),
    Option("batch-size", _count(1), "global batch (per-device batch with weak scaling) (default: the profile's)"),
    Option(
        "scaling",
        _choice(SCALINGS),
        "strong: split the global batch over the devices; weak: keep the "
        "per-device batch and compare throughput (default: strong)",
        "strong",
    ),
    Option("steps", _count(1), "training steps per timed round (default: the profile's)"),
    Option("rounds", _count(1), "timed rounds per configuration (default: the profile's)"),
    Option("warmup", _count(0), "untimed warmup steps before the first round (default: the profile's)"),
    Option(
        "precision", _choice(tuple(PRECISIONS)), f"{', '.join(PRECISIONS)}: autocast precision (default: fp32)", "fp32"
    ),
    Option("channels-last", flag, "use channels_last memory format (default: false)", "false"),
    Option(
        "timeout",
        _seconds,
        "seconds a worker group may take to start or to finish one round before it is torn down (default: 600)",
        "600",
    ),
    Option(
        "speedup-fail",
        _share,
        "fail when a speedup dropped by more than this against the --benchmark-compare baseline, "
        "beyond the runs' noise, e.g. 20% (default: no gate)",
    ),
    Option(
        "min-efficiency",
        _share,
        "fail when a multi-device efficiency (speedup / devices) is below this, beyond noise, e.g. 0.8 "
        "(default: no minimum)",
    ),
    Option(
        "compare-any-hardware",
        flag,
        "allow --benchmark-compare against a baseline from another hardware class (default: false)",
        "false",
    ),
    Option("report", _path, "write a Markdown report of speedups and verdicts here (default: none)"),
    Option("plot", _path, "write a PNG of speedup against devices here; needs matplotlib (default: none)"),
]


@dataclass(frozen=True)
class Settings:
    profile: str
    models: tuple[str, ...]
    devices: tuple[DeviceSet, ...]
    wrappers: tuple[str, ...]
    batch_size: int
    scaling: str
    steps: int
    rounds: int
    warmup: int
    precision: str
    channels_last: bool
    timeout: float
    speedup_fail: float | None = None
    min_efficiency: float | None = None
    compare_any_hardware: bool = False
    report: Path | None = None
    plot: Path | None = None

    @property
    def kind(self) -> str:
        """The device kind whose hardware class keys the baselines: cuda if any set uses it."""
        return "cuda" if any(s.kind == "cuda" for s in self.devices) else "cpu"

    @property
    def gate(self) -> str | None:
        """The thresholds, for people, or None."""
        parts = []
        if self.speedup_fail is not None:
            parts.append(f"speedup drop beyond {self.speedup_fail:.0%} and beyond noise fails")
        if self.min_efficiency is not None:
            parts.append(f"efficiency below {self.min_efficiency:.0%} beyond noise fails")
        return "; ".join(parts) or None

    @classmethod
    def from_values(cls, values: dict[str, str | None]) -> Settings:
        """``values`` maps option names to raw text (None: not given); raises OptionError."""
        parsed: dict[str, Any] = {}
        for option in OPTIONS:
            text = values.get(option.name)
            text = option.default if text is None else text
            if text is None:
                continue
            try:
                parsed[option.name.replace("-", "_")] = option.parse(text)
            except ValueError as e:
                raise OptionError(f"{option.flag}: {e}") from None
        profile = parsed.get("profile") or ("seed" if torch.cuda.device_count() > 0 else "quick")
        parsed = {**PROFILES[profile], **parsed, "profile": profile}
        if parsed["devices"] == "auto":
            parsed["devices"] = tuple(auto_device_sets())
        return cls(**parsed)

    def __post_init__(self) -> None:
        for devices in self.devices:
            if self.scaling == "strong" and self.batch_size < len(devices):
                raise OptionError(
                    f"--cnnbench-batch-size: a global batch of {self.batch_size} cannot be split "
                    f"over the {len(devices)} devices of {devices}; valid: at least {len(devices)}"
                )

    @property
    def threads_per_device(self) -> int:
        """Every CPU device gets the same share: the usable cores over the largest CPU set."""
        largest = max((len(s) for s in self.devices if s.kind == "cpu"), default=1)
        return max(1, len(usable_cores()) // largest)

    def cases(self) -> list[Case]:
        """Every meaningful (model, wrapper, device set), ``single`` first in each model config."""
        cases = []
        for model in self.models:
            for wrapper in self.wrappers:
                for devices in self.devices:
                    if get_wrapper(wrapper).fits(len(devices)):
                        cases.append(self._case(model, wrapper, devices))
        return sorted(cases, key=lambda c: (self.models.index(c.model), c.wrapper != "single"))

    def _case(self, model: str, wrapper: str, devices: DeviceSet) -> Case:
        return Case(
            model=model,
            batch_size=self.batch_size,
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
        )
