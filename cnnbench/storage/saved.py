"""Saved runs as typed values: a result written and read through ``cnnbench.storage.schema``, a
saved file read once into a ``SavedRun``.

Runs saved before paired rounds (no ``reference_seconds``) still read: they compare unpaired;
runs saved before real data (no ``data``) read as synthetic ones.

A saved run may be marked accepted: a top-level ``"cnnbench_accepted": {"at": <ISO 8601 time>}``
beside pytest-benchmark's own keys, which it ignores. The history gate's protected level starts
afresh at the most recent accepted run (``cnnbench.results.levels``). ``mark_accepted`` sets the
mark on a file, ``accepted_mark`` gives it for a run being saved, ``is_accepted`` reads it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cnnbench.machine.devices import class_kind, parse_device_set
from cnnbench.machine.environment import saved_class
from cnnbench.results.run import AllReduce, LocalRounds, Result, Run, SpeedupStats, Unusable
from cnnbench.settings.cases import Case
from cnnbench.storage import schema
from cnnbench.storage.schema import Measurement


def result_of(
    name: str,
    case: Case,
    round_seconds: Sequence[float],
    reference_seconds: Sequence[float],
    device_names: Sequence[str],
    local: tuple[LocalRounds, ...] = (),
    all_reduce: tuple[AllReduce, ...] = (),
    held_seconds: Sequence[float] = (),
    epoch_seconds: Sequence[float] = (),
    compile_seconds: float | None = None,
    compiled_graphs: int | None = None,
) -> Result:
    """A finished configuration's Result, as the next run will read it back from what is saved
    (unchecked: ``Result.check`` says whether its figures can give a speedup)."""
    measured = Measurement(
        round_seconds,
        reference_seconds,
        device_names,
        local,
        all_reduce,
        held_seconds,
        epoch_seconds,
        compile_seconds,
        compiled_graphs,
    )
    return schema.parse(name, schema.write(case, measured))


def extra_info(case: Case, result: Result, stats: SpeedupStats | None) -> dict[str, Any]:
    """Everything a saved run needs to be read back, and the figures people look for."""
    return schema.write(case, Measurement.of(result)) | schema.derived(result, stats)


def read_result(bench: dict[str, Any]) -> Result:
    """One saved benchmark as a Result; raises Unusable with the reason."""
    return schema.read(bench.get("fullname"), bench.get("extra_info") or {})


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
    accepted_at: datetime | None = None  # when it was marked accepted; None: not accepted

    @classmethod
    def read(
        cls,
        source: str,
        benchmarks: list[dict[str, Any]],
        environment: Any,
        saved_at: datetime | None = None,
        accepted_at: datetime | None = None,
    ) -> SavedRun:
        return cls(source, *read_run(benchmarks), environment, saved_at, accepted_at)

    @property
    def label(self) -> str:
        """Its file name without ``.json``: ``0007_main``."""
        return Path(self.source).stem

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
    mark = saved.get(ACCEPTED)
    accepted = (_when(mark.get("at")) or EPOCH) if isinstance(mark, dict) else (EPOCH if mark is True else None)
    return SavedRun.read(str(path), saved["benchmarks"], environment, _when(saved.get("datetime")), accepted)


def _when(text: Any) -> datetime | None:
    """pytest-benchmark's ISO 8601 save time, in UTC; None if there is none."""
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


ACCEPTED = "cnnbench_accepted"  # the top-level key of the mark
EPOCH = datetime.fromtimestamp(0, timezone.utc)  # when a mark without a readable time was set


def accepted_mark(at: datetime | None = None) -> dict[str, str]:
    """The mark's value: when the run was accepted (now, unless given), in UTC."""
    return {"at": (at or datetime.now(timezone.utc)).isoformat()}


def is_accepted(run: SavedRun) -> bool:
    """Whether the run is marked accepted: the history gate's protected level starts afresh at it."""
    return run.accepted_at is not None


def mark_accepted(path: Path, at: datetime | None = None) -> None:
    """Mark a saved run accepted, in place: readers see the file unmarked or marked, never a part,
    and it keeps its mode. Unreadable says why a file holds no saved run; OSError, why it cannot be written."""
    saved = load(path)
    saved[ACCEPTED] = accepted_mark(at)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf8") as out:
            os.fchmod(out.fileno(), path.stat().st_mode & 0o7777)
            json.dump(saved, out, indent=4)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
