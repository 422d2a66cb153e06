"""A hardware class's history: its kept runs (rejected ones left out) read in the order they were
saved, as the history gate and ``cnnbench history`` read them."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from cnnbench.results.levels import Past
from cnnbench.storage.folders import query
from cnnbench.storage.saved import SavedRun, Unreadable, is_accepted, read_file

EARLIEST = datetime.min.replace(tzinfo=timezone.utc)  # where a run without a save time sorts


def order(run: SavedRun) -> tuple[datetime, str]:
    """By save time, then by file name (its run number)."""
    return run.saved_at or EARLIEST, Path(run.source).name


def kept_runs(folder: Path) -> tuple[list[SavedRun], dict[Path, str]]:
    """The kept runs in a hardware class's folder, oldest first, and why each unreadable one was skipped."""
    runs, skipped = [], {}
    for path in query(folder, "*"):
        try:
            runs.append(read_file(path))
        except Unreadable as why:
            skipped[path] = str(why)
    return sorted(runs, key=order), skipped


def history(runs: list[SavedRun]) -> list[Past]:
    """Saved runs, oldest first, as the history gate sees them."""
    return [Past(run.label, run.run, is_accepted(run)) for run in runs]
