"""The edge between typed results and pytest-benchmark's JSON: each result's ``extra_info`` is
written once, and a saved run is read once, into the same ``Result``.

Runs saved before paired rounds (no ``reference_seconds``) still read: they compare unpaired;
runs saved before real data (no ``data``) read as synthetic ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cnnbench.machine.devices import DEVICE_KINDS, class_kind, parse_device_set
from cnnbench.machine.environment import saved_class
from cnnbench.results.run import AllReduce, LocalRounds, Result, Run, SpeedupStats, Unusable
from cnnbench.settings.cases import Case
from cnnbench.workload.wrappers import is_reference


def workload(case: Case) -> dict[str, str]:
    """What two runs of one test id must share to compare: the work per round and its split."""
    out = {"steps per round": str(case.steps), "images per device": _split(case.device_batches)}
    if DEVICE_KINDS[case.devices.kind].pinned:
        out["threads per rank"] = str(case.threads_per_device)
    if case.data.reads:
        out["training images"] = str(case.data.train_images)
    return out


def _split(batches: list[int]) -> str:
    return "/".join(map(str, batches))


def result_of(
    name: str,
    case: Case,
    round_seconds: list[float],
    reference_seconds: list[float],
    device_names: list[str],
    local: tuple[LocalRounds, ...] = (),
    all_reduce: tuple[AllReduce, ...] = (),
    held_seconds: Sequence[float] = (),
    epoch_seconds: Sequence[float] = (),
    compile_seconds: float | None = None,
    compiled_graphs: int | None = None,
) -> Result:
    reference = case.reference
    return Result(
        name=name,
        model_config=case.model_config,
        wrapper=case.wrapper,
        device_set=str(case.devices),
        device_count=len(case.devices),
        is_reference=reference is None,
        images_per_round=case.global_batch * case.steps,
        round_seconds=tuple(round_seconds),
        reference_seconds=tuple(reference_seconds),
        reference_images_per_round=reference.global_batch * reference.steps if reference else 0,
        workload=workload(case),
        device_names=tuple(device_names),
        steps_per_round=case.steps,
        local=local,
        all_reduce=all_reduce,
        held_seconds=tuple(held_seconds),
        train_images=case.data.train_images,
        epoch_seconds=tuple(epoch_seconds),
        compile_seconds=compile_seconds,
        compiled_graphs=compiled_graphs,
    )


def extra_info(case: Case, result: Result, stats: SpeedupStats | None) -> dict[str, Any]:
    """Everything a saved run needs to be read back, and the figures people look for."""
    info: dict[str, Any] = {
        "model_config": case.model_config,
        "model": case.model,
        "wrapper": case.wrapper,
        "device_set": str(case.devices),
        "devices": case.devices.devices,
        "processes": case.processes,
        "scaling": case.scaling,
        "global_batch": case.global_batch,
        "device_batches": case.device_batches,
        "steps_per_round": case.steps,
        "warmup_steps": case.warmup,
        "precision": case.precision,
        "channels_last": case.channels_last,
        "compiled": case.compile,
        "compile_seconds": result.compile_seconds,
        "compiled_graphs": result.compiled_graphs,
        "device_names": list(result.device_names),
        "round_seconds": list(result.round_seconds),
        "reference": case.reference.id if case.reference else None,
        "reference_seconds": list(result.reference_seconds),
        "reference_images_per_round": result.reference_images_per_round,
        "images_per_second": result.images_per_second,
        "speedup": stats.speedup if stats else None,
        "speedup_ci": list(stats.interval) if stats and stats.interval else None,
        "efficiency": stats.efficiency if stats else None,
        "paired": result.paired,
    }
    if DEVICE_KINDS[case.devices.kind].pinned:
        info["threads_per_rank"] = case.threads_per_device
    if result.local:
        info["local_steps"] = [
            {
                "device": d.device,
                "alike": d.alike,
                "images_per_round": d.images_per_round,
                "seconds": list(d.seconds),
            }
            for d in result.local
        ]
    if split := result.split:
        info["compute_bound_speedup"] = split.compute_bound
        info["compute_bound_speedup_ci"] = _listed(split.compute_bound_interval)
        info["exposed_sync_seconds"] = split.exposed_sync  # per step
        info["exposed_sync_ci"] = _listed(split.exposed_sync_interval)
        info["exposed_sync_share"] = split.sync_share
        if split.ideal_capacity is not None:
            info["ideal_capacity"] = split.ideal_capacity
    if case.data.reads:
        info |= {"data": case.data.kind, "train_images": case.data.train_images, "published_data": case.data.published}
        info["loader_workers"] = case.loader_workers  # per process of the group
    if pipeline := result.pipeline:
        info["held_batch_seconds"] = list(result.held_seconds)
        info["held_batch_images_per_second"] = pipeline.held_images_per_second
        info["input_share"] = pipeline.input_share
        info["input_share_ci"] = _listed(pipeline.input_share_interval)
        info["epoch_seconds"] = pipeline.epoch_seconds
        info["timed_epoch_seconds"] = list(result.epoch_seconds)  # empty: the epoch was derived
    if gradient := result.gradient:
        info["all_reduce_buckets"] = [_bandwidth(b) for b in result.all_reduce]  # the seconds: the slowest rank's mean
        info["gradient_all_reduce"] = _bandwidth(gradient)  # every bucket, one after another
    return info


def _bandwidth(all_reduce: AllReduce) -> dict[str, Any]:
    b = all_reduce
    return {"bytes": b.bytes, "seconds": b.seconds, "ranks": b.ranks, "algbw_gbps": b.algbw, "busbw_gbps": b.busbw}


def _listed(bounds: tuple[float, float] | None) -> list[float] | None:
    return list(bounds) if bounds else None


def read_result(bench: dict[str, Any]) -> Result:
    """One saved benchmark as a Result; raises Unusable with the reason."""
    info = bench.get("extra_info") or {}
    if not isinstance(info, dict):
        raise Unusable("its extra_info is not a mapping")
    try:
        batches = info.get("device_batches", info.get("per_device_batch"))  # the older name
        devices = info["devices"]
        work = {"steps per round": str(info["steps_per_round"]), "images per device": _split(batches)}
        if "threads_per_rank" in info:
            work["threads per rank"] = str(info["threads_per_rank"])
        if "train_images" in info:
            work["training images"] = str(info["train_images"])
        wrapper = info["wrapper"]
        result = Result(
            name=_text(bench["fullname"]),
            model_config=_text(info["model_config"]),
            wrapper=_text(wrapper),
            device_set=_text(info["device_set"]),
            device_count=len(devices),
            is_reference=is_reference(wrapper),
            images_per_round=int(info["global_batch"]) * int(info["steps_per_round"]),
            round_seconds=tuple(float(s) for s in info.get("round_seconds") or ()),
            reference_seconds=tuple(float(s) for s in info.get("reference_seconds") or ()),
            reference_images_per_round=int(info.get("reference_images_per_round") or 0),
            workload=work,
            device_names=tuple(info.get("device_names") or ()),
            steps_per_round=int(info["steps_per_round"]),
            local=tuple(_local(d) for d in info.get("local_steps") or ()),
            all_reduce=tuple(_all_reduce(b) for b in info.get("all_reduce_buckets") or ()),
            held_seconds=tuple(float(s) for s in info.get("held_batch_seconds") or ()),
            train_images=int(info.get("train_images") or 0),
            epoch_seconds=tuple(float(s) for s in info.get("timed_epoch_seconds") or ()),
            compile_seconds=_optional(float, info.get("compile_seconds")),
            compiled_graphs=_optional(int, info.get("compiled_graphs")),
        )
    except KeyError as error:
        raise Unusable(f"no {error.args[0]!r} in its extra_info") from None
    except (TypeError, ValueError, AttributeError, OverflowError) as error:
        raise Unusable(f"unreadable extra_info ({error})") from None
    result.check()
    return result


def _local(item: dict[str, Any]) -> LocalRounds:
    if not isinstance(item["seconds"], list):
        raise TypeError(f"local step seconds {item['seconds']!r} are not a list")
    seconds = tuple(float(s) for s in item["seconds"])
    return LocalRounds(_text(item["device"]), int(item["alike"]), int(item["images_per_round"]), seconds)


def _all_reduce(item: dict[str, Any]) -> AllReduce:
    return AllReduce(int(item["bytes"]), float(item["seconds"]), int(item["ranks"]))


def _optional(kind: type, value: Any) -> Any:
    return None if value is None else kind(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not text")
    return value


def read_run(benchmarks: list[dict[str, Any]]) -> tuple[Run, dict[str, str]]:
    """A saved run's usable results, and why each of the others is unusable, by test name."""
    run, unusable = Run(), {}
    for bench in benchmarks:
        if not isinstance(bench, dict) or not isinstance(bench.get("fullname"), str):
            continue  # not a benchmark of any test this run could match
        try:
            run.add(read_result(bench))
        except Unusable as why:
            unusable[bench["fullname"]] = str(why)
    return run, unusable


class Unreadable(ValueError):
    """A file that holds no saved run; the message says why."""


@dataclass(frozen=True)
class SavedRun:
    """A saved run as read back: its usable results, why the others are unusable, and where it ran."""

    source: str  # its file
    run: Run
    unusable: dict[str, str]  # by test name
    environment: dict[str, Any] | None  # machine_info["cnnbench"]; None where it was saved without it
    saved_at: datetime | None = None  # pytest-benchmark's "datetime": when the run was saved

    @classmethod
    def read(
        cls, source: str, benchmarks: list[dict[str, Any]], environment: Any, saved_at: datetime | None = None
    ) -> SavedRun:
        return cls(source, *read_run(benchmarks), environment, saved_at)

    @property
    def hardware(self) -> str | None:
        """Its hardware class, from its fingerprint and its device sets; None without a fingerprint.
        A ValueError says why it cannot be told."""
        if self.environment is None:
            return None
        kinds = [parse_device_set(result.device_set).kind for result in self.run.results.values()]
        if not kinds:
            raise ValueError("no usable result, so its device kind is unknown")
        return saved_class(self.environment, class_kind(kinds))


def load(path: Path) -> dict[str, Any]:
    """A saved pytest-benchmark file (``--benchmark-save``, ``--benchmark-json``) as JSON, with its
    ``benchmarks`` list; Unreadable says why not."""
    try:
        saved = json.loads(path.read_text(encoding="utf8"))
    except OSError as error:
        raise Unreadable(f"cannot read it ({error.strerror or error})") from None
    except ValueError as error:  # not UTF-8, or not JSON
        raise Unreadable(f"not a JSON file ({error})") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("benchmarks"), list):
        raise Unreadable("no 'benchmarks' list; expected a pytest-benchmark JSON file")
    return saved


def read_file(path: Path) -> SavedRun:
    """A saved run from its file; Unreadable says why it cannot be read."""
    saved = load(path)
    machine = saved.get("machine_info")
    environment = machine.get("cnnbench") if isinstance(machine, dict) else None
    return SavedRun.read(str(path), saved["benchmarks"], environment, _when(saved.get("datetime")))


def _when(text: Any) -> datetime | None:
    """pytest-benchmark's ISO 8601 save time, in UTC; None if there is none."""
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
