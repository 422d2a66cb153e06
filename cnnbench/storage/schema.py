"""The saved result's schema: each key of a result's ``extra_info``, declared once with how it is
written from a case and its measurement and how it is read back, typed.

A result is only ever built by reading: the plugin writes the measured fields, reads them back
into a ``Result`` and adds the derived figures (speedup, intervals, bandwidth) that people and
dashboards look for but nothing reads back. So what is saved is what the next run compares with.
Runs saved before a field existed read with its default; ``older`` names a key's earlier name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnbench.machine.devices import DEVICE_KINDS
from cnnbench.results.run import AllReduce, LocalRounds, Result, SpeedupStats, Unusable
from cnnbench.settings.cases import Case
from cnnbench.workload.wrappers import is_reference

REQUIRED = object()  # a field without which a saved result is unusable


@dataclass(frozen=True)
class Measurement:
    """What a configuration's rounds measured, besides its case."""

    round_seconds: Sequence[float]
    reference_seconds: Sequence[float] = ()
    device_names: Sequence[str] = ()
    local: tuple[LocalRounds, ...] = ()
    all_reduce: tuple[AllReduce, ...] = ()
    held_seconds: Sequence[float] = ()
    epoch_seconds: Sequence[float] = ()
    compile_seconds: float | None = None
    compiled_graphs: int | None = None

    @classmethod
    def of(cls, result: Result) -> Measurement:
        return cls(
            result.round_seconds,
            result.reference_seconds,
            result.device_names,
            result.local,
            result.all_reduce,
            result.held_seconds,
            result.epoch_seconds,
            result.compile_seconds,
            result.compiled_graphs,
        )


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not text")
    return value


def _optional(kind: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else kind(value)


def _floats(value: Any) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise TypeError(f"{value!r} is not a list")
    return tuple(float(v) for v in value)


def _whole_numbers(value: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(_text(v) for v in value)


def _local(item: dict[str, Any]) -> LocalRounds:
    return LocalRounds(
        _text(item["device"]), int(item["alike"]), int(item["images_per_round"]), _floats(item["seconds"])
    )


def _all_reduce(item: dict[str, Any]) -> AllReduce:
    return AllReduce(int(item["bytes"]), float(item["seconds"]), int(item["ranks"]))


def bandwidth(b: AllReduce) -> dict[str, Any]:
    return {"bytes": b.bytes, "seconds": b.seconds, "ranks": b.ranks, "algbw_gbps": b.algbw, "busbw_gbps": b.busbw}


def _pinned(case: Case, m: Measurement) -> bool:
    return DEVICE_KINDS[case.devices.kind].pinned


def _reads(case: Case, m: Measurement) -> bool:
    return case.data.reads


def _held(case: Case, m: Measurement) -> bool:
    return bool(m.held_seconds)


def _always(case: Case, m: Measurement) -> bool:
    return True


@dataclass(frozen=True)
class Field:
    key: str
    write: Callable[[Case, Measurement], Any]
    read: Callable[[Any], Any]  # the saved JSON value, typed; TypeError or ValueError if it is not
    default: Any = REQUIRED  # what a run saved without the key reads as
    when: Callable[[Case, Measurement], bool] = field(default=_always)  # written only where this holds
    older: str | None = None  # the key's name in runs saved before it was renamed

    def value(self, info: dict[str, Any]) -> Any:
        for key in (self.key, self.older):
            if key is not None and key in info:
                raw = info[key]
                return self.default if raw is None and self.default is not REQUIRED else self.read(raw)
        if self.default is REQUIRED:
            raise Unusable(f"no {self.key!r} in its extra_info")
        return self.default


FIELDS = (  # read in this order: the first one missing is the one named
    Field("devices", lambda c, m: list(c.devices.devices), _texts),
    Field("model_config", lambda c, m: c.model_config, _text),
    Field("model", lambda c, m: c.model, _text, default=None),
    Field("wrapper", lambda c, m: c.wrapper, _text),
    Field("device_set", lambda c, m: str(c.devices), _text),
    Field("processes", lambda c, m: c.processes, int, default=None),
    Field("scaling", lambda c, m: c.scaling, _text, default=None),
    Field("global_batch", lambda c, m: c.global_batch, int),
    Field(
        "device_batches",
        lambda c, m: list(c.device_batches),
        lambda v: tuple(int(b) for b in v),
        older="per_device_batch",
    ),
    Field("steps_per_round", lambda c, m: c.steps, int),
    Field("warmup_steps", lambda c, m: c.warmup, int, default=None),
    Field("precision", lambda c, m: c.precision, _text, default=None),
    Field("channels_last", lambda c, m: c.channels_last, bool, default=False),
    Field("compiled", lambda c, m: c.compile, bool, default=False),
    Field("compile_seconds", lambda c, m: m.compile_seconds, _optional(float), default=None),
    Field("compiled_graphs", lambda c, m: m.compiled_graphs, _optional(int), default=None),
    Field("threads_per_rank", lambda c, m: c.threads_per_device, int, default=None, when=_pinned),
    Field("device_names", lambda c, m: list(m.device_names), _texts, default=()),
    Field("round_seconds", lambda c, m: list(m.round_seconds), _floats, default=()),
    Field("reference", lambda c, m: c.reference.id if c.reference else None, _optional(_text), default=None),
    Field("reference_seconds", lambda c, m: list(m.reference_seconds), _floats, default=()),
    Field(
        "reference_images_per_round",
        lambda c, m: c.reference.global_batch * c.reference.steps if c.reference else 0,
        int,
        default=0,
    ),
    Field(
        "local_steps",
        lambda c, m: [{**vars(d), "seconds": list(d.seconds)} for d in m.local],
        lambda v: tuple(_local(d) for d in v),
        default=(),
        when=lambda c, m: bool(m.local),
    ),
    Field("data", lambda c, m: c.data.kind, _text, default="synthetic", when=_reads),
    Field("train_images", lambda c, m: c.data.train_images, int, default=0, when=_reads),
    Field("published_data", lambda c, m: c.data.published, bool, default=False, when=_reads),
    Field("loader_workers", lambda c, m: c.loader_workers, int, default=0, when=_reads),  # per process
    Field("held_batch_seconds", lambda c, m: list(m.held_seconds), _floats, default=(), when=_held),
    Field("timed_epoch_seconds", lambda c, m: list(m.epoch_seconds), _floats, default=(), when=_held),  # []: derived
    Field(  # per DDP gradient bucket; the seconds are the slowest rank's mean
        "all_reduce_buckets",
        lambda c, m: [bandwidth(b) for b in m.all_reduce],
        lambda v: tuple(_all_reduce(b) for b in v),
        default=(),
        when=lambda c, m: bool(m.all_reduce),
    ),
)
FIELD = {f.key: f for f in FIELDS}
# the one derived figure read back, by the hand-written loop (``python -m cnnbench.bare --compare``)
IMAGES_PER_SECOND = Field("images_per_second", lambda c, m: None, float)
WORKLOAD = {  # what two runs of one test id must share to compare, by saved key
    "steps_per_round": "steps per round",
    "device_batches": "images per device",
    "threads_per_rank": "threads per rank",
    "train_images": "training images",
}


def write(case: Case, measurement: Measurement) -> dict[str, Any]:
    """The measured fields of a result's ``extra_info``."""
    return {f.key: f.write(case, measurement) for f in FIELDS if f.when(case, measurement)}


def read(name: Any, info: Any) -> Result:
    """One saved result as a Result, its figures checked; Unusable says why it cannot be."""
    result = parse(name, info)
    result.check()
    return result


def values(info: dict[str, Any]) -> dict[str, Any]:
    """Every field of a saved result, typed, by key; Unusable, KeyError, TypeError or ValueError if one
    cannot be read."""
    return {f.key: f.value(info) for f in FIELDS}


def parse(name: Any, info: Any) -> Result:
    """A result's fields as a Result, unchecked; Unusable says which field is missing or unreadable."""
    if not isinstance(info, dict):
        raise Unusable("its extra_info is not a mapping")
    try:
        v = values(info)
        result = Result(
            name=_text(name),
            model_config=v["model_config"],
            wrapper=v["wrapper"],
            device_set=v["device_set"],
            device_count=len(v["devices"]),
            is_reference=is_reference(v["wrapper"]),
            images_per_round=v["global_batch"] * v["steps_per_round"],
            round_seconds=v["round_seconds"],
            reference_seconds=v["reference_seconds"],
            reference_images_per_round=v["reference_images_per_round"],
            workload={label: _shown(v[key]) for key, label in WORKLOAD.items() if v[key]},
            device_names=v["device_names"],
            steps_per_round=v["steps_per_round"],
            local=v["local_steps"],
            all_reduce=v["all_reduce_buckets"],
            held_seconds=v["held_batch_seconds"],
            train_images=v["train_images"],
            epoch_seconds=v["timed_epoch_seconds"],
            compile_seconds=v["compile_seconds"],
            compiled_graphs=v["compiled_graphs"],
        )
    except Unusable:
        raise
    except KeyError as error:
        raise Unusable(f"no {error.args[0]!r} in its extra_info") from None
    except (TypeError, ValueError, AttributeError, OverflowError) as error:
        raise Unusable(f"unreadable extra_info ({error})") from None
    return result


def _shown(value: Any) -> str:
    return "/".join(map(str, value)) if isinstance(value, tuple) else str(value)


def derived(result: Result, stats: SpeedupStats | None) -> dict[str, Any]:
    """The figures computed from a result, saved for people and dashboards; never read back."""
    info: dict[str, Any] = {
        IMAGES_PER_SECOND.key: result.images_per_second,
        "speedup": stats.speedup if stats else None,
        "speedup_ci": _listed(stats.interval) if stats else None,
        "efficiency": stats.efficiency if stats else None,
        "paired": result.paired,
    }
    if split := result.split:
        info["compute_bound_speedup"] = split.compute_bound
        info["compute_bound_speedup_ci"] = _listed(split.compute_bound_interval)
        info["exposed_sync_seconds"] = split.exposed_sync  # per step
        info["exposed_sync_ci"] = _listed(split.exposed_sync_interval)
        info["exposed_sync_share"] = split.sync_share
        if split.ideal_capacity is not None:
            info["ideal_capacity"] = split.ideal_capacity
    if pipeline := result.pipeline:
        info["held_batch_images_per_second"] = pipeline.held_images_per_second
        info["input_share"] = pipeline.input_share
        info["input_share_ci"] = _listed(pipeline.input_share_interval)
        info["epoch_seconds"] = pipeline.epoch_seconds
    if gradient := result.gradient:
        info["gradient_all_reduce"] = bandwidth(gradient)  # every bucket, one after another
    return info


def _listed(bounds: tuple[float, float] | None) -> list[float] | None:
    return list(bounds) if bounds else None
