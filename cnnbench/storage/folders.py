"""Saved runs in a storage folder, laid out as the plugin saves them:
``<storage>/<hardware class>/<machine id>/NNNN_<name>.json``, and the runs kept out of the
baselines in ``<storage>/<hardware class>/rejected/``.

Names resolve by pytest-benchmark's own rules (its ``FileStorage.query``): a run number (``0003``)
or a name glob (``*_main``), optionally behind a machine id (``Linux-CPython-3.11-64bit/0003``).

A class's baseline, the run a bare ``--benchmark-compare`` compares with, is its newest saved run
whatever the Python that saved it: the machine id names the interpreter (``3.11``), and a runner
moved to another Python keeps its hardware. Within one machine id folder the newest is the highest
number, as pytest-benchmark takes it; across folders, the one saved last (``datetime`` in the
file) or accepted last (``cnnbench accept``, which records when).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REJECTED = "rejected"  # beside a class's runs: runs that failed, were interrupted or regressed
ACCEPTED = "cnnbench_accepted"  # in an accepted copy: when it was accepted, and from which file
NUMBERED = re.compile(r"\d{4}_.*\.json")  # what a bare --benchmark-compare loads: [0-9][0-9][0-9][0-9]_*.json
EARLIEST = datetime.min.replace(tzinfo=timezone.utc)  # a readable run without a save time


def query(folder: Path, wanted: str, machine_id: str | None = None, with_rejected: bool = False) -> list[Path]:
    """The saved runs in a hardware class's folder that ``wanted`` matches, by run number and
    name; rejected runs left out unless ``with_rejected``. ``machine_id`` narrows a number or glob to one interpreter's
    folder, as ``--benchmark-compare`` does; None: every one, as ``pytest-benchmark compare`` does."""
    from pytest_benchmark.storage.file import FileStorage

    if not folder.is_dir():
        return []  # and not made, as FileStorage would
    storage = FileStorage(folder, logger=None, default_machine_id=machine_id)  # the logger is for loading only
    return [path for path in storage.query(wanted) if with_rejected or path.parent.name != REJECTED]


def classes(storage: Path) -> list[str]:
    """The hardware classes that hold saved runs, kept or rejected."""
    if not storage.is_dir():
        return []
    return sorted(folder.name for folder in storage.iterdir() if folder.is_dir() and any(folder.glob("*/*.json")))


def rejected(storage: Path, hardware: str) -> list[Path]:
    """A hardware class's rejected runs, by name: the time they were kept."""
    return sorted((storage / hardware / REJECTED).glob("*.json"))


def machine_id() -> str:
    """The folder pytest-benchmark keeps this interpreter's runs in: ``Linux-CPython-3.11-64bit``."""
    from pytest_benchmark.utils import get_machine_id

    return get_machine_id()


def baseline(folder: Path) -> Path | None:
    """The run a bare ``--benchmark-compare`` of a hardware class compares with: in each machine id
    folder the newest readable numbered run, and of those the one saved or accepted last; None
    where the class has none."""
    newest = []
    for interpreter in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not interpreter.is_dir() or interpreter.name == REJECTED:
            continue
        for path in sorted((p for p in interpreter.iterdir() if NUMBERED.fullmatch(p.name)), reverse=True):
            when = _became_baseline(path)
            if when is not None:  # pytest-benchmark too skips a file it cannot load
                newest.append((when, path.name, path))
                break
    return max(newest)[2] if newest else None


def _became_baseline(path: Path) -> datetime | None:
    """When a saved run was saved, or accepted; None where it is no readable pytest-benchmark file."""
    try:
        saved = json.loads(path.read_text(encoding="utf8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or not isinstance(saved.get("benchmarks"), list):
        return None
    accepted = saved.get(ACCEPTED)
    return _time(accepted.get("at") if isinstance(accepted, dict) else saved.get("datetime"))


def _time(text: Any) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return EARLIEST
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def environment_of(path: Path) -> dict[str, Any] | None:
    """A saved run's cnnbench fingerprint, ``machine_info["cnnbench"]``; None where it has none."""
    try:
        machine = json.loads(path.read_text(encoding="utf8")).get("machine_info")
    except (OSError, ValueError, AttributeError):
        return None
    environment = machine.get("cnnbench") if isinstance(machine, dict) else None
    return environment if isinstance(environment, dict) else None


def accept(saved: dict[str, Any], origin: str, folder: Path, name: str) -> Path:
    """Keep ``saved`` (a run's file content, read from ``origin``) as the next numbered run of
    ``folder``, ``NNNN_accepted_<name>.json``, with when it was accepted and from where. No file is replaced."""
    folder.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.name[:4]) for p in folder.iterdir() if NUMBERED.fullmatch(p.name)]
    path = folder / f"{max(numbers, default=0) + 1:04}_accepted_{name}.json"
    copy = {**saved, ACCEPTED: {"at": datetime.now(timezone.utc).isoformat(), "from": origin}}
    with path.open("x", encoding="utf8") as out:  # "x": never over an existing file
        json.dump(copy, out, indent=4)
    return path
