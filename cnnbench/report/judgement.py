"""A run judged: its verdicts, the gate's outcome, what changed since the baseline, and the notes
that go with them. The one judgement behind the plugin's summary, ``cnnbench compare`` and
``cnnbench history --gate``: against one baseline run, or against the protected level of the saved
history (``--cnnbench-history-fail``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cnnbench.machine.environment import differences
from cnnbench.results import levels
from cnnbench.results.changes import MIN_RUNS
from cnnbench.results.levels import Level, Past
from cnnbench.results.run import Run
from cnnbench.results.verdicts import Outcome, Verdict, outcome, short_name, verdicts
from cnnbench.settings.gate import Gate
from cnnbench.settings.options import PROFILES

if TYPE_CHECKING:
    from cnnbench.storage.saved import SavedRun
    from cnnbench.workload.data import DataSource


@dataclass(frozen=True)
class Report:
    run: Run
    verdicts: dict[str, Verdict]  # by test name
    outcome: Outcome
    environment: dict
    hardware: str
    compared: bool  # --benchmark-compare was given
    baseline: str | None = None  # the compared file
    storage: str | None = None
    changes: list[str] = field(default_factory=list)  # environment, baseline -> now
    gate: Gate = field(default_factory=Gate)
    notes: list[str] = field(default_factory=list)
    history: list[Past] | None = None  # the saved runs read for the history gate, oldest first; None: not set
    levels: dict[str, Level] = field(default_factory=dict)  # the protected level by test name
    accepted: bool = False  # this run is accepted: it starts a new level


def judge(
    run: Run,
    baseline: SavedRun | None,
    gate: Gate,
    environment: dict,
    hardware: str,
    compared: bool,
    storage: str | None = None,
    notes: list[str] | None = None,
    history: list[Past] | None = None,
    accepted: bool = False,
) -> Report:
    """The verdicts, the gate's outcome and what changed since the baseline: the one judgement
    behind the plugin's summary and ``cnnbench compare``. ``baseline`` is None where none was loaded.
    With the history gate, ``history`` holds the saved runs (oldest first, this run not among them)
    and ``accepted`` says that this run starts a new level."""
    if gate.history_fail is not None:
        return _against_history(run, history or [], gate, accepted, environment, hardware, storage, notes or [])
    judged = verdicts(run, baseline.run if baseline else None, baseline.unusable if baseline else {}, gate)
    changes = []
    if baseline is not None:
        old = baseline.environment
        changes = differences(old, environment) if old else ["the baseline has no cnnbench fingerprint"]
    return Report(
        run=run,
        verdicts={v.result.name: v for v in judged},
        outcome=outcome(judged, gate, baseline_loaded=baseline is not None),
        environment=environment,
        hardware=hardware,
        compared=compared,
        baseline=baseline.source if baseline else None,
        storage=storage,
        changes=changes,
        gate=gate,
        notes=notes or [],
    )


def _against_history(
    run: Run,
    history: list[Past],
    gate: Gate,
    accepted: bool,
    environment: dict,
    hardware: str,
    storage: str | None,
    notes: list[str],
) -> Report:
    judged, protected = levels.verdicts(run, history, gate, accepted)
    recent = levels.stretch(history)
    since = f" since the accepted run {recent[0].label}" if recent and recent[0].accepted else ""
    return Report(
        run=run,
        verdicts={v.result.name: v for v in judged},
        outcome=outcome(
            judged,
            gate,
            baseline_loaded=len(recent) >= MIN_RUNS,
            against="the history's protected level",
            none_yet=f"history too short to judge ({len(recent)} < {MIN_RUNS} saved runs{since})",
        ),
        environment=environment,
        hardware=hardware,
        compared=False,
        storage=storage,
        gate=gate,
        notes=notes,
        history=history,
        levels=protected,
        accepted=accepted,
    )


def history_lines(report: Report) -> list[str]:
    """What the history gate read, and each protected level."""
    history = report.history
    if history is None:
        return []
    recent = levels.stretch(history)
    where = f" in {report.storage}" if report.storage else ""
    since = f", {len(recent)} since the accepted run {recent[0].label}" if recent and recent[0].accepted else ""
    lines = [f"history: {len(history)} saved run(s) of {report.hardware}{where}{since}"]
    for name, level in report.levels.items():
        result = report.run.results[name]
        runs = f"{level.runs[0]}..{level.runs[-1]}" if len(level.runs) > 1 else level.runs[0]
        lines.append(
            f"protected level, {result.wrapper} {result.device_set}: {level.speedup:.2f}x, the median of "
            f"{len(level.runs)} runs ({runs})"
        )
    if report.accepted:
        lines.append("accepted: this run starts a new level; the history gate protects it once it holds")
    return lines


def implausible(report: Report) -> list[str]:
    """Speedups above the device count beyond noise: the reference was probably disturbed."""
    lines = []
    for config in report.run.configs.values():
        for result in config.results.values():
            stats = config.speedup_stats(result)
            if stats and stats.interval and stats.interval[0] > result.device_count:
                lines.append(
                    f"warning: {result.wrapper} {result.device_set} measured {stats.speedup:.2f}x on "
                    f"{result.device_count} device(s) (95% CI from {stats.interval[0]:.2f}x): beyond the ideal, so "
                    "its reference was probably disturbed; do not keep this run as a baseline, save a quiet one"
                )
    return lines


def context(report: Report) -> list[str]:
    lines = []
    if report.compared:
        if report.baseline:
            lines.append(f"baseline: {report.baseline}")
        else:
            lines.append(
                f"baseline: none yet for {report.hardware} in {report.storage}: nothing to compare with, "
                "so no speedup is gated; save one with --benchmark-save=NAME"
            )
    if report.gate.set:
        lines.append(f"gate: {report.gate}")
    lines += history_lines(report)
    if report.baseline:
        lines += [f"environment changed: {c}" for c in report.changes] or ["environment: unchanged since the baseline"]
    lines += [
        f"since the baseline, {v.result.wrapper} {v.result.device_set}: {'; '.join(v.explanation)}"
        for v in report.verdicts.values()
        if v.explanation
    ]
    not_judged = [v for v in report.verdicts.values() if report.gate.set and not v.judged]
    lines += [f"not judged: {short_name(v.result.name)}: {v.verdict}" for v in not_judged]
    env = report.environment
    libraries = [f"torch {env.get('torch')}"]  # a saved fingerprint may lack what a newer one has
    if env.get("gpus"):
        names = {"cuda": "CUDA", "cudnn": "cuDNN", "nccl": "NCCL", "driver": "driver"}
        libraries += [f"{name} {env.get(key)}" for key, name in names.items()]
    machine = f"machine: {report.hardware}; {', '.join(libraries)}"
    return [*lines, machine, *report.notes, *compile_notes(report.run), *implausible(report)]


def compile_notes(run: Run) -> list[str]:
    """One line per compiled result: what its first step, compile included, took before the warmup."""
    return [
        f"compiled: {r.wrapper} {r.device_set} ({r.model_config}): first step {r.compile_seconds:.1f} s, "
        f"compiling included, before the warmup (slowest rank; {r.compiled_graphs} graph(s))"
        for r in run.results.values()
        if r.compile_seconds is not None
    ]


def data_notes(source: DataSource) -> list[str]:
    """What real data was read, and what a round of it cannot show."""
    if not source.reads:
        return []
    return [
        source.describe(),
        "note: where a loader has workers, each round starts with the batches they prefetched since the last "
        "one (2 each), so with few steps per round part of the loading is hidden; --cnnbench-epochs times whole "
        "epochs",
    ]


def profile_note(models: tuple[str, ...]) -> str | None:
    """Said when the quick profile's model ran, whatever the profile."""
    if set(models) & set(PROFILES["quick"]["models"]):
        return (
            "note: the quick profile (1/4-width GoogLeNet at batch 32) is a CPU-sized proxy that "
            "exercises the DDP machinery, not the reference workload; its speedups are not GPU speedups"
        )
    return None
