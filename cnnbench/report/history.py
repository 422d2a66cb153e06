"""``cnnbench history``: a hardware class's saved runs in the order they were saved, as a table
and a plot of each configuration's speedup with its interval and of the reference's throughput,
with every change of environment between one run and the next marked.

Each configuration's speedups over the kept runs are cut into levels at their change points
(``cnnbench.results.levels``): each change point is listed with its size, its p-value, the run
where it happened and what changed in the environment there, and the protected level the history
gate would judge the next run against is shown, in the text and on the plot.

Runs kept out of the baselines (``rejected/``) are shown apart; each is marked against the last
kept run saved before it.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cnnbench.machine.environment import differences
from cnnbench.report.files import save_png
from cnnbench.report.table import aligned
from cnnbench.results.changes import MIN_RUNS
from cnnbench.results.levels import Track, points
from cnnbench.results.run import Result
from cnnbench.storage.kept import history as as_past
from cnnbench.storage.kept import order
from cnnbench.storage.saved import SavedRun, is_accepted

WORDS = (0, 1)  # the run and its save time, left-aligned; figures and markers right-aligned


def label(run: SavedRun) -> str:
    return run.label


def column(result: Result) -> str:
    """Results match across runs by wrapper and device set within a model config."""
    return f"{result.wrapper} {result.device_set}"


@dataclass(frozen=True)
class Change:
    marker: int  # [1], [2], ...: the same in the table and on the plot
    run: SavedRun
    lines: tuple[str, ...]  # what changed since the kept run before it: ``driver 550.54.15 -> 560.35.03``

    @property
    def summary(self) -> str:
        more = f" (+{len(self.lines) - 1} more)" if len(self.lines) > 1 else ""
        return f"[{self.marker}] {self.lines[0]}{more}"


@dataclass(frozen=True)
class Series:
    """One configuration's speedups over the kept runs that hold it, cut into levels."""

    track: Track
    runs: tuple[SavedRun, ...]  # the run of each of the track's points


@dataclass(frozen=True)
class History:
    hardware: str
    kept: list[SavedRun]  # oldest first
    rejected: list[SavedRun]  # oldest first; empty unless asked for
    changes: dict[str, Change]  # by run source
    series: dict[tuple[str, str], Series]  # by model config and column; speedups only

    @classmethod
    def of(cls, hardware: str, kept: list[SavedRun], rejected: list[SavedRun]) -> History:
        kept, rejected = sorted(kept, key=order), sorted(rejected, key=order)
        changes: dict[str, Change] = {}
        before: SavedRun | None = None  # the last kept run
        baselines = {run.source for run in kept}
        for run in sorted([*kept, *rejected], key=order):
            if before and before.environment is not None and run.environment is not None:
                lines = differences(before.environment, run.environment)
                if lines:
                    changes[run.source] = Change(len(changes) + 1, run, tuple(lines))
            if run.source in baselines:
                before = run
        return cls(hardware, kept, rejected, changes, _series(kept))

    def configs(self, runs: list[SavedRun]) -> dict[str, list[str]]:
        """Per model config, its columns in the order they first appear."""
        return configs(runs)


def configs(runs: list[SavedRun]) -> dict[str, list[str]]:
    """Per model config, its columns in the order they first appear."""
    out: dict[str, dict[str, None]] = {}
    for run in runs:
        for config in run.run.configs.values():
            seen = out.setdefault(config.name, {})
            seen.update(dict.fromkeys(column(result) for result in config.results.values()))
    return {name: list(columns) for name, columns in out.items()}


def _series(kept: list[SavedRun]) -> dict[tuple[str, str], Series]:
    """Each speedup column's track, as the history gate would judge the next run of its test: the
    newest run's result decides the test and the workload the others must share."""
    out = {}
    past = as_past(kept)
    for config, columns in configs(kept).items():
        for name in columns:
            result = next((r for run in reversed(kept) if (r := _result(run, config, name))), None)
            if result is None or result.is_reference:
                continue
            held = [(run, found[0]) for run, one in zip(kept, past, strict=True) if (found := points(result, [one]))]
            if held:
                out[config, name] = Series(Track.of([point for _, point in held]), tuple(run for run, _ in held))
    return out


def _result(run: SavedRun, config: str, name: str) -> Result | None:
    results = run.run.configs.get(config)
    return next((r for r in results.results.values() if column(r) == name), None) if results else None


@dataclass(frozen=True)
class Entry:
    """One column's figure in one run: the reference's images/s, or a speedup and its interval."""

    is_reference: bool
    value: float | None  # None: no speedup (an unpaired result whose run had no reference)
    interval: tuple[float, float] | None = None  # None: too few rounds

    def __str__(self) -> str:
        if self.is_reference:
            return f"{self.value:.1f} img/s"
        if self.value is None:
            return "-"
        bounds = f" {self.interval[0]:.2f}..{self.interval[1]:.2f}" if self.interval else ""
        return f"{self.value:.2f}x{bounds}"


def entry(run: SavedRun, config: str, name: str) -> Entry | None:
    """The column ``name`` of a model config in a run; None where the run lacks it."""
    results = run.run.configs.get(config)
    result = next((r for r in results.results.values() if column(r) == name), None) if results else None
    if result is None:
        return None
    if result.is_reference:
        return Entry(True, result.images_per_second)
    stats = results.speedup_stats(result)
    return Entry(False, stats.speedup, stats.interval) if stats else Entry(False, None)


def tables(history: History, runs: list[SavedRun]) -> dict[str, list[tuple[str, ...]]]:
    """Per model config: a header row, then one row per run that holds it."""
    out = {}
    for config, columns in history.configs(runs).items():
        held = [run for run in runs if config in run.run.configs]
        marked = any(run.source in history.changes for run in held)
        rows = out[config] = [("run", "saved (UTC)", *columns, *["env"] * marked)]
        for run in held:
            when = run.saved_at.strftime("%Y-%m-%d %H:%M") if run.saved_at else "-"
            cells = [str(entry(run, config, name) or "") for name in columns]
            if marked:
                change = history.changes.get(run.source)
                cells.append(f"[{change.marker}]" if change else "")
            rows.append((label(run), when, *cells))
    return out


def _table_lines(history: History, runs: list[SavedRun], width: int, levels: bool = False) -> list[str]:
    lines = []
    for config, rows in tables(history, runs).items():
        lines += [config, *aligned(rows, WORDS, width, keys=1)]
        if levels:
            lines += _level_lines(history, config, width)
    return lines


def _level_lines(history: History, config: str, width: int) -> list[str]:
    """Each change point of the config's speedups, with the environment change at its run, and the
    protected level the history gate would judge the next run against."""
    lines = []
    for (where, name), series in history.series.items():
        if where != config:
            continue
        track = series.track
        for point in track.changes:
            run = series.runs[point.index]
            change = history.changes.get(run.source)
            env = f"[{change.marker}] {'; '.join(change.lines)}" if change else "environment unchanged"
            said = (
                f"change point, {name}, at {run.label}: {point.before:.2f}x -> {point.after:.2f}x "
                f"({point.change:+.0%}, p={point.p_value:.2g}); {env}"
            )
            lines += textwrap.wrap(said, width, initial_indent="  ", subsequent_indent="      ")
        lines += textwrap.wrap(_protected(name, track), width, initial_indent="  ", subsequent_indent="      ")
    return lines


def _protected(name: str, track: Track) -> str:
    level = track.protected
    since = f" since the accepted run {track.since}" if track.since else ""
    if level is None:
        return f"protected level, {name}: none yet, {track.judged_runs} < {MIN_RUNS} runs{since}"
    runs = f"{level.runs[0]}..{level.runs[-1]}"
    return f"protected level, {name}: {level.speedup:.2f}x, the median of {len(level.runs)} runs ({runs}){since}"


def _notes(history: History, runs: list[SavedRun], width: int) -> list[str]:
    lines = []
    changes = [history.changes[run.source] for run in runs if run.source in history.changes]
    for change in changes:
        said = f"[{change.marker}] {label(change.run)}: {'; '.join(change.lines)}"
        lines += textwrap.wrap(said, width, initial_indent="  ", subsequent_indent="      ")
    unpaired = [label(run) for run in runs if any(_unpaired(result) for result in run.run.results.values())]
    if unpaired:
        said = f"unpaired, saved before paired rounds (speedup from the reference test's rounds): {', '.join(unpaired)}"
        lines += textwrap.wrap(said, width, initial_indent="  ", subsequent_indent="    ")
    for run in runs:
        for name, why in run.unusable.items():
            lines += textwrap.wrap(f"{label(run)}: unusable {name}: {why}", width, subsequent_indent="    ")
    return lines


def _unpaired(result: Result) -> bool:
    return not result.paired and not result.is_reference


def text(history: History, storage: Path, width: int) -> list[str]:
    """The history tables, kept runs first and rejected ones apart, each followed by what changed."""
    lines = [f"{history.hardware}: {len(history.kept)} saved run(s) in {storage}, oldest first"]
    lines += _table_lines(history, history.kept, width, levels=True)
    if any(series.track.changes for series in history.series.values()):
        lines.append(f"change points: a level holds at least {MIN_RUNS} runs; p: Welch's t-test between two levels")
    accepted = [label(run) for run in history.kept if is_accepted(run)]
    if accepted:
        lines.append(f"accepted, each starting a new level: {', '.join(accepted)}")
    if any(run.source in history.changes for run in history.kept):
        lines.append("environment changes (env), since the run before:")
    lines += _notes(history, history.kept, width)
    if history.rejected:
        lines.append(f"rejected: {len(history.rejected)} run(s) kept out of the baselines, oldest first")
        lines += _table_lines(history, history.rejected, width)
        if any(run.source in history.changes for run in history.rejected):
            lines.append("environment changes (env), since the kept run before:")
        lines += _notes(history, history.rejected, width)
    return lines


def plot(history: History, path: Path) -> None:
    """Per model config, each configuration's speedup (95% interval) over time above the
    reference's throughput, environment changes as marked vertical lines; rejected runs as crosses;
    change points as dotted lines in the configuration's color, its protected level dashed."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure  # an optional extra: imported only when asked for

    configs = history.configs([*history.kept, *history.rejected])
    figure = Figure(figsize=(7 * len(configs), 7), layout="constrained")
    grid = figure.subplots(2, len(configs), squeeze=False, sharex="col")
    for (config, columns), speedup_axes, reference_axes in zip(configs.items(), grid[0], grid[1], strict=True):
        for name in columns:
            color = None  # the rejected runs' crosses take the kept runs' color
            for runs, kind, style in (
                (history.kept, "", {"marker": "o"}),
                (history.rejected, " rejected", {"marker": "x", "linestyle": "none"}),
            ):
                is_reference, points = _points(runs, config, name)
                if not points:
                    continue
                x, y = [when for when, _ in points], [at.value for _, at in points]
                if is_reference:
                    (line,) = reference_axes.plot(x, y, color=color, label=name + kind, **style)
                    color = line.get_color()
                    continue
                bounds = [at.interval or (at.value, at.value) for _, at in points]
                low = [value - lo for value, (lo, _) in zip(y, bounds, strict=True)]
                high = [hi - value for value, (_, hi) in zip(y, bounds, strict=True)]
                bars = speedup_axes.errorbar(x, y, yerr=[low, high], capsize=3, color=color, label=name + kind, **style)
                color = bars.lines[0].get_color()
            if (series := history.series.get((config, name))) is not None:
                _mark_levels(speedup_axes, series, name, color)
        for change in history.changes.values():
            if change.run.saved_at is None or config not in change.run.run.configs:
                continue
            for axes in (speedup_axes, reference_axes):
                axes.axvline(change.run.saved_at, color="gray", linestyle="--", linewidth=1)
            speedup_axes.annotate(
                change.summary,
                xy=(change.run.saved_at, 1),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="top",
                ha="right",
                fontsize=8,
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
            )
        speedup_axes.set(title=config, ylabel="speedup over one device (95% CI)")
        reference_axes.set(ylabel="reference images/s", xlabel="saved (UTC)")
        locator = AutoDateLocator()
        reference_axes.xaxis.set_major_locator(locator)
        reference_axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        for axes in (speedup_axes, reference_axes):
            axes.grid(alpha=0.3)
            if axes.has_data():
                axes.legend(fontsize=8)
    figure.suptitle(f"cnnbench history on {history.hardware}")
    save_png(figure, path)


def _mark_levels(axes, series: Series, name: str, color) -> None:
    """Change points as dotted vertical lines with their size, the protected level as a dashed line."""
    for point in series.track.changes:
        when = series.runs[point.index].saved_at
        if when is None:
            continue
        axes.axvline(when, color=color, linestyle=":", linewidth=1.5)
        axes.annotate(
            f"{point.change:+.0%}", xy=(when, point.after), xytext=(3, -12), textcoords="offset points", color=color
        )
    if (level := series.track.protected) is not None:
        axes.axhline(level.speedup, color=color, linestyle="--", linewidth=1, label=f"{name} protected level")


def _points(runs: list[SavedRun], config: str, name: str) -> tuple[bool, list[tuple[datetime, Entry]]]:
    """Whether the column is a reference's, and its figure at each save time."""
    found = [(run.saved_at, entry(run, config, name)) for run in runs]
    points = [(when, at) for when, at in found if when is not None and at is not None and at.value is not None]
    return any(at and at.is_reference for _, at in found), points
