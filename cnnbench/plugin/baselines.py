"""Where cnnbench meets pytest-benchmark's storage and session: which baseline was loaded, where
runs are stored, and keeping a bad run out of the baselines.

pytest-benchmark has no public API for these: its session object comes from
``cnnbench.plugin.adapter``, which lists and checks every private name read on it.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from cnnbench.machine.devices import DEVICE_KINDS
from cnnbench.machine.environment import differences, driver_report, saved_class
from cnnbench.storage.folders import REJECTED, baseline, classes, environment_of, machine_id, query, rejected

ANY_HARDWARE = "--cnnbench-compare-any-hardware to compare anyway"


def storage_by_hardware(storage: str, hardware: str, identified: bool) -> str:
    """The ``--benchmark-storage`` value with the hardware class appended; file storage only.
    ``identified``: the class names the devices (no GPU run without GPU names)."""
    if not identified:
        raise pytest.UsageError(
            f"cnnbench: no GPU could be identified (neither nvidia-smi nor torch names one), so the hardware "
            f"class is {hardware!r} and runs of different GPUs would mix; valid: save and compare where "
            "nvidia-smi or torch sees the GPUs"
        )
    if "://" in storage and not storage.startswith("file://"):
        raise pytest.UsageError(
            f"cnnbench: --benchmark-storage={storage.split('://')[0]}://... is not supported: cnnbench keeps "
            "baselines apart by hardware class in folders; valid: a folder path or file://PATH"
        )
    return f"{storage.rstrip('/')}/{hardware}"


def bare_baseline(session, storage: str) -> Path | None:
    """For a bare ``--benchmark-compare``: the hardware class's baseline where pytest-benchmark would
    miss it, under another Python's machine id folder than this one's; None where its own pick is
    the class's baseline, or where there is none. Where there is none but the storage holds other
    classes' baselines, a usage error says what differs, unless ``--cnnbench-new-hardware``."""
    root = Path(storage.removeprefix("file://"))
    found = baseline(root / session.hardware)
    if found is None:
        others = {name: path for name in classes(root) if name != session.hardware and (path := baseline(root / name))}
        if others and not session.settings.new_hardware:
            held = "; ".join(_what_differs(name, path, session) for name, path in others.items())
            raise pytest.UsageError(
                f"cnnbench: no baseline of this machine's hardware class in {root}, which holds other classes' "
                f"only: this run: {session.hardware}; baselines: {held}; valid: run where those baselines were "
                "saved (repair this machine), or --cnnbench-new-hardware where this machine is new to the storage"
            )
        return None
    return None if found.parent.name == machine_id() else found.resolve()


def _what_differs(hardware: str, newest: Path, session) -> str:
    """A class, its newest baseline, the facts that name hardware that differ since it, and a guess."""
    theirs = environment_of(newest) or {}
    since = ", ".join(differences(_facts(theirs), _facts(session.environment))) or "no GPU, CPU or library change"
    said = f"{hardware} (newest {newest.parent.name}/{newest.name}; since it: {since})"
    kind = hardware.partition("-")[0]
    fewer = session.settings.kind != kind or len(session.environment["gpus"]) < len(theirs.get("gpus") or [])
    if kind in DEVICE_KINDS and not DEVICE_KINDS[kind].pinned and fewer:
        said += f": did the GPUs disappear? {DEVICE_KINDS[kind].report()}; {driver_report(session.environment)}"
    return said


def _facts(environment: dict) -> dict[str, str]:
    """What names a machine's hardware and its GPU stack, for a one-line diff."""
    gpus = Counter(gpu.get("name") for gpu in environment.get("gpus") or [])
    cpu = environment.get("cpu") or {}
    return {
        **{key: str(environment.get(key) or "none") for key in ("python", "torch", "cuda", "driver")},
        "gpus": ", ".join(f"{n}x {name}" for name, n in gpus.items()) or "none",
        "cpu": f"{cpu.get('cores')}x {cpu.get('model')}",
    }


def require_baseline(benchmarks, session) -> None:
    """``--cnnbench-require-baseline``: a run that loaded no baseline stops before anything runs."""
    if not session.settings.require_baseline or benchmarks is None or benchmarks.compared_mapping:
        return
    folder = Path(str(benchmarks.storage))
    kept, apart = query(folder, ""), rejected(folder.parent, folder.name)
    there = f"{len(kept)} saved run(s), none readable" if kept else "no saved run"
    if apart:
        there += f", {len(apart)} rejected (newest {apart[-1].name})"
    raise pytest.UsageError(
        f"cnnbench: --cnnbench-require-baseline: no baseline of {session.hardware} in {folder.parent} ({there}); "
        "valid: a baseline saved from main (--benchmark-save=main), or one made with: cnnbench accept RUN"
    )


def refuse_other_hardware(session, baseline_environment: dict | None) -> None:
    """A baseline from another hardware class is a usage error, unless the user allowed it."""
    if baseline_environment is None or session.settings.compare_any_hardware:
        return
    try:
        theirs = saved_class(baseline_environment, session.settings.kind)
    except ValueError as why:
        raise pytest.UsageError(
            f"cnnbench: the --benchmark-compare baseline's {why}; valid: a run saved by cnnbench ({ANY_HARDWARE})"
        ) from None
    if theirs != session.hardware:
        raise pytest.UsageError(
            f"cnnbench: the --benchmark-compare baseline comes from {theirs}, this machine is {session.hardware}; "
            f"speedups compare only within one hardware class ({ANY_HARDWARE})"
        )


def check_named_baseline(benchmarks) -> None:
    """A baseline named by number, name or glob that matched nothing here is a usage error that says
    where it looked and what is there, or which other hardware class holds it. ``benchmarks``:
    pytest-benchmark's session, as ``cnnbench.plugin.adapter`` gives it."""
    wanted = benchmarks.compare if benchmarks else None
    if not isinstance(wanted, str) or benchmarks.compared_mapping:
        return
    storage = benchmarks.storage
    here = sorted(p.name for p in query(storage.path, wanted, benchmarks.machine_id))
    if here:
        raise pytest.UsageError(
            f"cnnbench: --benchmark-compare={wanted!r} matches {', '.join(here)} in {storage}, but it could not "
            "be read (pytest-benchmark's warning says why); valid: a readable saved run"
        )
    elsewhere = sorted(
        f"{folder.name} ({', '.join(sorted(p.name for p in files))})"
        for folder in storage.path.parent.iterdir()
        if folder.is_dir() and folder != storage.path and (files := query(folder, wanted, benchmarks.machine_id))
    )
    if elsewhere:
        raise pytest.UsageError(
            f"cnnbench: --benchmark-compare={wanted!r} matches nothing for this machine's hardware class "
            f"{storage.path.name}, but other classes hold it: {'; '.join(elsewhere)}; speedups compare only "
            f"within one hardware class (pass the file's path with {ANY_HARDWARE})"
        )
    have = sorted(p.name for p in query(storage.path, "", benchmarks.machine_id))
    raise pytest.UsageError(
        f"cnnbench: --benchmark-compare={wanted!r} matches no saved run in {storage}; "
        f"there: {', '.join(have) or 'none'} (a bare --benchmark-compare takes the newest)"
    )


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
        benchmarks.json = Path(storage) / REJECTED / f"{time.strftime('%Y%m%d_%H%M%S')}_{label}.json"
        benchmarks.json.parent.mkdir(parents=True, exist_ok=True)
        message += f"; kept for inspection as {benchmarks.json}"
    return message
