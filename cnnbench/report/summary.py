"""What people read: a run judged, as the terminal summary and the Markdown report, from one set of tables."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cnnbench.machine.environment import differences
from cnnbench.report.table import aligned
from cnnbench.results.run import Run
from cnnbench.results.verdicts import Gate, Outcome, Verdict, gate_flags, outcome, short_name, verdicts
from cnnbench.settings.options import PROFILES

if TYPE_CHECKING:
    from cnnbench.storage.saved import SavedRun
    from cnnbench.workload.data import DataSource

WORDS = (0, 1, 9)  # columns of names (wrapper, devices, verdict), left-aligned; numbers right-aligned
PIPELINE_WORDS = (0, 1, 7)  # wrapper, devices, where the epoch's time came from


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


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _range(values, fmt: str) -> str:
    return "" if values is None else f"{values[0]:{fmt}}..{values[1]:{fmt}}"


def tables(report: Report) -> dict[str, list[tuple[str, ...]]]:
    """Per model config: a header row, then one row per result."""
    show_verdicts = report.compared or report.gate.set
    header = ("wrapper", "devices", "images/s", "speedup", "95% CI", "efficiency")
    if show_verdicts:
        header += ("baseline", "change", "95% CI", "verdict")
    out: dict[str, list[tuple[str, ...]]] = {}
    for config in report.run.configs.values():
        rows = out[config.name] = [header]
        for result in config.results.values():
            stats = config.speedup_stats(result)
            row = (
                result.wrapper,
                result.device_set,
                f"{result.images_per_second:.1f}",
                _times(stats and stats.speedup),
                _range(stats and stats.interval, ".2f"),
                "-" if stats is None else f"{stats.efficiency:.0%}",
            )
            if show_verdicts:
                verdict = report.verdicts.get(result.name)
                if verdict is None:
                    row += ("", "", "", "")
                else:
                    change = "" if verdict.change is None else f"{verdict.change:+.0%}"
                    words = verdict.verdict + (" (baseline unpaired)" if verdict.unpaired else "")
                    row += (_times(verdict.baseline), change, _range(verdict.change_ci, "+.0%"), words)
            rows.append(row)
    return out


def split_tables(report: Report) -> dict[str, list[tuple[str, ...]]]:
    """Per model config, where each result's time went: the compute-bound speedup (the local step
    on its devices against the reference: communication free), the sync exposed beyond it per
    step and its share of the step, the speedup's share of the compute-bound one (the ideal of an
    even split), for a mixed set the ideal capacity and the speedup's share of it, and the whole
    gradient's all-reduce bus bandwidth."""
    mixed = any(r.split and r.split.ideal_capacity is not None for r in report.run.results.values())
    header = ("wrapper", "devices", "compute-bound", "95% CI", "exposed sync", "95% CI", "of step", "of bound")
    header += ("ideal capacity", "of capacity") * mixed + ("busbw",)
    out: dict[str, list[tuple[str, ...]]] = {}
    for config in report.run.configs.values():
        rows = [header]
        for result in config.results.values():
            split, gradient, stats = result.split, result.gradient, config.speedup_stats(result)
            if split is None or stats is None:
                continue
            ms = 1000
            exposed_ci = split.exposed_sync_interval and tuple(v * ms for v in split.exposed_sync_interval)
            row = (
                result.wrapper,
                result.device_set,
                _times(split.compute_bound),
                _range(split.compute_bound_interval, ".2f"),
                f"{split.exposed_sync * ms:.1f} ms",
                _range(exposed_ci, ".1f"),
                f"{split.sync_share:.0%}",
                f"{stats.speedup / split.compute_bound:.0%}",
            )
            if mixed:
                capacity = split.ideal_capacity
                row += ("-", "-") if capacity is None else (_times(capacity), f"{stats.speedup / capacity:.0%}")
            rows.append((*row, "-" if gradient is None else f"{gradient.busbw:.2f} GB/s"))
        if len(rows) > 1:
            out[config.name] = rows
    return out


def pipeline_tables(report: Report) -> dict[str, list[tuple[str, ...]]]:
    """Per model config with real data: each result's images per second through the loader against
    the same steps on one batch held on the device, the share of the step time the loader adds, and
    the time of an epoch (timed, or the training set at the median round's pace)."""
    header = ("wrapper", "devices", "loader img/s", "held img/s", "input share", "95% CI", "epoch", "epoch from")
    out: dict[str, list[tuple[str, ...]]] = {}
    for config in report.run.configs.values():
        rows = [header]
        for result in config.results.values():
            if (pipeline := result.pipeline) is None:
                continue
            rows.append(
                (
                    result.wrapper,
                    result.device_set,
                    f"{result.images_per_second:.1f}",
                    f"{pipeline.held_images_per_second:.1f}",
                    f"{pipeline.input_share:.0%}",
                    _range(pipeline.input_share_interval, ".0%"),
                    _duration(pipeline.epoch_seconds),
                    f"{len(result.epoch_seconds)} timed" if pipeline.epoch_timed else "median round",
                )
            )
        if len(rows) > 1:
            out[config.name] = rows
    return out


def _duration(seconds: float | None) -> str:
    """``5:25`` from a minute on, as the published epoch times read; seconds below."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


def bandwidth_rows(report: Report) -> list[tuple[str, ...]]:
    """Every timed all-reduce bucket: nccl-tests' algbw and busbw."""
    rows = [("wrapper", "devices", "bytes", "time", "algbw", "busbw")]
    for result in report.run.results.values():
        for bucket in result.all_reduce:
            rows.append(
                (
                    result.wrapper,
                    result.device_set,
                    f"{bucket.bytes}",
                    f"{bucket.seconds * 1e3:.3f} ms",
                    f"{bucket.algbw:.2f} GB/s",
                    f"{bucket.busbw:.2f} GB/s",
                )
            )
    return rows if len(rows) > 1 else []


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


def _context(report: Report) -> list[str]:
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


def text(report: Report, width: int | None = None) -> list[str]:
    """The terminal summary: aligned tables, names left and numbers right (fitted to ``width``, if
    given), the context, then the failed checks and the gate's result, where the eye lands."""
    lines = []
    splits, pipelines = split_tables(report), pipeline_tables(report)
    for config, rows in tables(report).items():
        lines += [config, *aligned(rows, WORDS, width, keys=2)]
        if config in splits:
            lines += ["  where the time went (per step; local step alone on its devices vs the rest):"]
            lines += aligned(splits[config], WORDS, width, keys=2)
        if config in pipelines:
            lines += ["  input pipeline (the loader vs the same steps on one batch held on the device):"]
            lines += aligned(pipelines[config], PIPELINE_WORDS, width, keys=2)
    failed = [f"FAILED {short_name(name)}: {why}" for name, why in report.outcome.failures]
    return lines + _context(report) + failed + [report.outcome.line]


def _markdown_table(rows: list[tuple[str, ...]], words: tuple[int, ...] = WORDS) -> list[str]:
    lines = ["| " + " | ".join(rows[0]) + " |"]
    lines.append("|" + "|".join("---" if i in words else "---:" for i in range(len(rows[0]))) + "|")
    return lines + ["| " + " | ".join(row) + " |" for row in rows[1:]] + [""]


def judge(
    run: Run,
    baseline: SavedRun | None,
    gate: Gate,
    environment: dict,
    hardware: str,
    compared: bool,
    storage: str | None = None,
    notes: list[str] | None = None,
) -> Report:
    """The verdicts, the gate's outcome and what changed since the baseline: the one judgement
    behind the plugin's summary and ``cnnbench compare``. ``baseline`` is None where none was loaded."""
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


def markdown(report: Report) -> str:
    """A report fit for a CI job summary."""
    failed = [(short_name(name), why) for name, why in report.outcome.failures]
    lines = ["# cnnbench: multi-device speedup", ""]
    if report.outcome.failed:
        lines += [f"**Failed**: {len(failed) or 1} check(s)", ""] + [f"- `{name}`: {why}" for name, why in failed]
        if not failed:
            lines.append(f"- {report.outcome.line.removeprefix('cnnbench: ')}")
    else:
        lines.append(
            "**Passed**" if report.gate.set else f"No gate was set ({', '.join(f'`{flag}`' for flag in gate_flags())})."
        )
    lines.append("")
    splits, pipelines = split_tables(report), pipeline_tables(report)
    for config, rows in tables(report).items():
        lines += [f"## {config}", "", *_markdown_table(rows)]
        if config in splits:
            lines += ["Where the time went, per step (the local step alone on its devices, against the rest):", ""]
            lines += _markdown_table(splits[config])
        if config in pipelines:
            lines += [
                "The input pipeline: the rounds through the loader against the same steps on one batch held "
                "on the device, the share of the step time the loader adds, and an epoch of the training set:",
                "",
            ]
            lines += _markdown_table(pipelines[config], PIPELINE_WORDS)
    if buckets := bandwidth_rows(report):
        lines += ["## All-reduce at DDP's bucket sizes", "", *_markdown_table(buckets)]
    lines += ["## Run", ""] + [f"- {line}" for line in [*_context(report), report.outcome.line]]
    return "\n".join(lines) + "\n"


def write_files(report: Report, markdown_path: Path | None, png_path: Path | None, say: Callable[[str], None]) -> None:
    """The Markdown report and the plot, where asked for, each whole or not at all; ``say`` is told
    what was written. An OSError says what could not be."""
    from cnnbench.report.plot import plot  # which needs this module

    if markdown_path:
        write_atomically(markdown_path, markdown(report).encode())
        say(f"cnnbench: report written to {markdown_path}")
    if png_path:
        plot(report, png_path)
        say(f"cnnbench: plot written to {png_path}")


def _umask() -> int:
    """The process umask. Reading it means setting it: 077 for that instant, so a file made meanwhile is private."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the whole new one, never a part.

    The file gets the mode ``open(path, "w")`` would give it, the old file's or 0666 less the umask,
    not the owner-only 0600 of the temporary file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


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
