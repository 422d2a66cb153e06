"""The option table: every option's flag, ini key, help text, parser and default, and the
profiles that give the workload defaults.

Light on purpose: the plugin reads it in every pytest run of its environment, so nothing here
imports torch; the parsers that need a registry import it when they run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROFILES: dict[str, dict[str, Any]] = {
    # The reference workload: GoogLeNet (CIFAR variant) at a global batch of 128.
    "seed": {"models": ("googlenet_cifar",), "batch_size": 128, "steps": 20, "rounds": 5, "warmup": 5},
    # A CPU-sized proxy: the same architecture at 1/4 width, short enough for every CI run.
    "quick": {"models": ("googlenet_cifar_small",), "batch_size": 32, "steps": 3, "rounds": 6, "warmup": 2},
}
SCALINGS = ("strong", "weak")
PRECISIONS = ("fp32", "bf16", "fp16")  # autocast dtypes, mapped in cnnbench.workload.step


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
    if not (value > 0 and math.isfinite(value) and value < 1e7):
        raise ValueError(f"got {text!r}; valid: a number of seconds > 0 and below 10000000")
    return value


def _models() -> list[str]:
    from cnnbench.workload.models import list_models

    return list_models()


def _wrappers() -> list[str]:
    from cnnbench.workload.wrappers import list_wrappers

    return list_wrappers()


def _devices(text: str) -> tuple[Any, ...] | str:
    from cnnbench.machine.devices import parse_device_set

    if text.strip() == "auto":
        return "auto"
    words = re.sub(r"\b(\d+)x\s+", r"\1x", text).split()  # '2x cpu:0' is one set: 2xcpu:0
    sets = tuple(parse_device_set(word) for word in words)
    if not sets:
        raise ValueError("empty; valid: space-separated sets such as 'cuda:0 cuda:0,1', or auto")
    return sets


def _endpoint(text: str) -> Any:
    from cnnbench.machine.network import local_endpoint

    return local_endpoint(text)


def _data(text: str) -> Any:
    from cnnbench.workload.data import data_source

    return data_source(text)


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


def _gbps(text: str) -> float:
    """``25`` or ``25GB/s``: gigabytes (1e9 bytes) per second."""
    try:
        value = float(text.strip().removesuffix("GB/s"))
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ValueError(f"got {text!r}; valid: a bandwidth in GB/s greater than 0, e.g. 25 or 25GB/s")
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
    text: str  # what it does
    default: str | None = None  # the value used when none is given; None: see ``unset``
    unset: str = "the profile's"  # what happens when no value is given and there is no default

    @property
    def flag(self) -> str:
        return f"--cnnbench-{self.name}"

    @property
    def ini(self) -> str:
        return "cnnbench_" + self.name.replace("-", "_")

    @property
    def metavar(self) -> str:
        """What the help shows for its value: ``FAIL`` for ``speedup-fail``."""
        return self.name.split("-")[-1].upper()

    @property
    def is_flag(self) -> bool:
        return self.parse is flag

    @property
    def help(self) -> str:
        return f"{self.text} (default: {self.unset if self.default is None else self.default})"


OPTIONS = [
    Option(
        "profile",
        _choice(tuple(PROFILES)),
        "workload profile: "
        + "; ".join(
            f"{name} ({p['models'][0]}, batch {p['batch_size']}, {p['steps']} steps x {p['rounds']} rounds)"
            for name, p in PROFILES.items()
        ),
        unset="seed with CUDA, else quick",
    ),
    Option(
        "models",
        _names(_models),
        "comma-separated registered models, e.g. googlenet_cifar,resnet18_cifar; an unknown name lists the valid ones",
    ),
    Option(
        "devices",
        _devices,
        "space-separated device sets, e.g. 'cuda:0 cuda:0,1,2' or 'cpu:0 cpu:0,1', or auto "
        "(1, 2, 4, ... and all GPUs, else CPU sets up to the usable cores, none larger than the batch); "
        "'2x cuda:0,1' is the same devices on each of 2 nodes (needs --cnnbench-rdzv)",
        "auto",
    ),
    Option("wrappers", _names(_wrappers), "comma-separated parallel wrappers, e.g. single,ddp", unset="all registered"),
    Option("batch-size", _count(1), "global batch, or per-device batch with weak scaling"),
    Option(
        "scaling",
        _choice(SCALINGS),
        "strong: split the global batch over the devices; weak: keep the per-device batch and compare throughput",
        "strong",
    ),
    Option("steps", _count(1), "training steps per timed round"),
    Option("rounds", _count(1), "timed rounds per configuration (a verdict needs at least 3)"),
    Option("warmup", _count(0), "untimed warmup steps before the first round"),
    Option("precision", _choice(PRECISIONS), f"autocast precision: {', '.join(PRECISIONS)}", "fp32"),
    Option("channels-last", flag, "use channels_last memory format", "false"),
    Option(
        "compile",
        flag,
        "torch.compile the model (single, ddp, fsdp; dp is skipped) before the warmup; the compile time "
        "is reported beside the run, never inside a round",
        "false",
    ),
    Option(
        "data",
        _data,
        "training data: synthetic (one seeded batch made on each device) or cifar10:PATH (CIFAR-10's "
        "training set in PATH/cifar-10-batches-py through an augmenting DataLoader; never downloaded)",
        "synthetic",
    ),
    Option(
        "epochs",
        _count(1),
        "with real data, time this many whole epochs after the rounds, each on its own",
        unset="none: an epoch's time is derived from the median round",
    ),
    Option(
        "timeout",
        _seconds,
        "seconds a worker group may take to start, to finish one round or its all-reduce check",
        "600",
    ),
    Option(
        "rdzv",
        _endpoint,
        "HOST:PORT where the nodes of a multi-node set (2x cpu:0) meet: an address of this machine, "
        "the only one the run listens on; other nodes run: cnnbench join HOST:PORT",
        unset="none: every set on this node, all on loopback",
    ),
    Option(
        "speedup-fail",
        _share,
        "fail when a speedup dropped by more than this against the --benchmark-compare baseline, "
        "beyond the runs' noise, e.g. 20%",
        unset="no gate",
    ),
    Option(
        "min-efficiency",
        _share,
        "fail when a multi-device efficiency (speedup / devices) is below this, beyond noise, e.g. 0.8",
        unset="no minimum",
    ),
    Option(
        "min-busbw",
        _gbps,
        "fail when a multi-rank ddp result's all-reduce bus bandwidth is below this many GB/s, e.g. 25: "
        "nccl-tests' busbw of DDP's buckets one after another, the slowest rank's",
        unset="no minimum",
    ),
    Option(
        "history-fail",
        _share,
        "fail when a speedup is more than this below the protected level of its saved history, beyond "
        "noise, e.g. 10%: the highest level that held for 3 runs since the last accepted run, read from "
        "this hardware class's runs in --benchmark-storage; instead of --cnnbench-speedup-fail",
        unset="no history gate",
    ),
    Option(
        "accept-level",
        flag,
        "mark this run accepted as it is saved (needs --benchmark-save or --benchmark-autosave): the "
        "history gate's protected level starts afresh from it, so a lower level is kept on purpose; "
        "its own drop is shown, not failed",
        "false",
    ),
    Option(
        "compare-any-hardware",
        flag,
        "allow --benchmark-compare against a baseline from another hardware class",
        "false",
    ),
    Option(
        "require-baseline",
        flag,
        "fail (exit 4, before anything runs) when --benchmark-compare finds no baseline of this hardware "
        "class, instead of passing with none yet: for pull-request jobs",
        "false",
    ),
    Option(
        "new-hardware",
        flag,
        "this machine's hardware class is new to the storage: a bare --benchmark-compare runs (with no "
        "baseline yet) though the storage holds baselines of other classes only, which otherwise fails (exit 4)",
        "false",
    ),
    Option("report", _path, "write a Markdown report of speedups and verdicts here", unset="none"),
    Option("plot", _path, "write a PNG of speedup against devices here; needs matplotlib", unset="none"),
    Option(
        "verdict-json",
        _path,
        "write each result's verdict, its figures and the gate's outcome as JSON here, for CI "
        "(schema 1, in docs/history.md)",
        unset="none",
    ),
]

OPTION = {option.name: option for option in OPTIONS}


def read(values: dict[str, str | None], where: dict[str, str] | None = None) -> dict[str, Any]:
    """Parse the given values (option name -> text, None: not given), falling back to each
    option's default; options with neither are left out. A bad value raises OptionError naming
    where it came from: the option, or ``where[name]`` (an ini key and its file)."""
    parsed: dict[str, Any] = {}
    for option in OPTIONS:
        text = values.get(option.name)
        text = option.default if text is None else text
        if text is None:
            continue
        try:
            parsed[option.name.replace("-", "_")] = option.parse(text)
        except ValueError as error:
            raise OptionError(f"{(where or {}).get(option.name, option.flag)}: {error}") from None
    return parsed
