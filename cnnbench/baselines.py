"""Where cnnbench meets pytest-benchmark's storage and session: which baseline was loaded, where
runs are stored, and keeping a bad run out of the baselines.

pytest-benchmark has no public API for these; the session object (``config._benchmarksession``)
is its plugin's own, and the attributes used here are those its ``finish`` uses.
"""

from __future__ import annotations

import time
from pathlib import Path


def storage_by_hardware(storage: str, hardware: str) -> str:
    """The ``--benchmark-storage`` value with the hardware class appended, for file storage."""
    if "://" in storage and not storage.startswith("file://"):
        return storage  # a database: its runs carry the class in machine_info only
    return f"{storage.rstrip('/')}/{hardware}"


def loaded_baseline(benchmarks) -> tuple[str | None, list[dict]]:
    """The file ``--benchmark-compare`` loaded (the newest, if a pattern matched several) and its results."""
    loaded = list(benchmarks.compared_mapping.items())  # empty without --benchmark-compare
    if not loaded:
        return None, []
    path, by_name = loaded[-1]
    return str(Path(str(benchmarks.storage)) / path), list(by_name.values())


def their_regressions(benchmarks) -> bool:
    """Whether pytest-benchmark's own ``--benchmark-compare-fail`` checks fail; it runs them only
    after saving, so they are run here once ahead and their findings dropped (it finds them again)."""
    if not (benchmarks.compare_fail and benchmarks.compared_mapping):
        return False
    before = len(benchmarks.performance_regressions)
    for _ in benchmarks.prepare_benchmarks():  # runs the checks, appending what fails
        pass
    failed = len(benchmarks.performance_regressions) > before
    del benchmarks.performance_regressions[before:]
    return failed


def keep_out(benchmarks, how: str) -> str | None:
    """Cancel ``--benchmark-save``/``--benchmark-autosave``; keep the run in ``rejected/`` instead,
    where ``--benchmark-compare`` does not look. Returns what to tell the user, or None."""
    name = benchmarks.save or benchmarks.autosave
    if not name or not benchmarks.benchmarks:
        return None
    benchmarks.save = benchmarks.autosave = False
    message = f"cnnbench: this run {how}, so it was not saved as a baseline in {benchmarks.storage}"
    storage = getattr(benchmarks.storage, "path", None)  # file storage
    if storage is not None and not benchmarks.json:
        label = name if isinstance(name, str) else "autosave"
        benchmarks.json = Path(storage) / "rejected" / f"{time.strftime('%Y%m%d_%H%M%S')}_{label}.json"
        benchmarks.json.parent.mkdir(parents=True, exist_ok=True)
        message += f"; kept for inspection as {benchmarks.json}"
    return message
