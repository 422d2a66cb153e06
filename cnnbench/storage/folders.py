"""Saved runs in a storage folder, laid out as the plugin saves them:
``<storage>/<hardware class>/<machine id>/NNNN_<name>.json``, and the runs kept out of the
baselines in ``<storage>/<hardware class>/rejected/``.

Names resolve by pytest-benchmark's own rules (its ``FileStorage.query``): a run number (``0003``)
or a name glob (``*_main``), optionally behind a machine id (``Linux-CPython-3.11-64bit/0003``).
"""

from __future__ import annotations

from pathlib import Path

REJECTED = "rejected"  # beside a class's runs: runs that failed, were interrupted or regressed


def query(folder: Path, wanted: str, machine_id: str | None = None) -> list[Path]:
    """The saved runs in a hardware class's folder that ``wanted`` matches, by run number and
    name; rejected runs left out. ``machine_id`` narrows a number or glob to one interpreter's
    folder, as ``--benchmark-compare`` does; None: every one, as ``pytest-benchmark compare`` does."""
    from pytest_benchmark.storage.file import FileStorage

    if not folder.is_dir():
        return []  # and not made, as FileStorage would
    storage = FileStorage(folder, logger=None, default_machine_id=machine_id)  # the logger is for loading only
    return [path for path in storage.query(wanted) if path.parent.name != REJECTED]


def classes(storage: Path) -> list[str]:
    """The hardware classes that hold saved runs, kept or rejected."""
    if not storage.is_dir():
        return []
    return sorted(folder.name for folder in storage.iterdir() if folder.is_dir() and any(folder.glob("*/*.json")))


def rejected(storage: Path, hardware: str) -> list[Path]:
    """A hardware class's rejected runs, by name: the time they were kept."""
    return sorted((storage / hardware / REJECTED).glob("*.json"))
