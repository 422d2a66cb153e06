"""The history gate: a run's speedups judged against the protected level of its saved history,
not against one saved run.

Per test, the speedups of the saved runs, oldest first, are cut into levels at their change points
(``cnnbench.results.changes``). The protected level is the highest level that held for at least
``MIN_RUNS`` runs since the most recent accepted run: one odd run neither sets it nor lowers it,
a slow ratchet of small drops is measured against where it started, and a drop never becomes the
protected level by itself. A lower level is kept only by accepting a run (a mark on the saved run,
set by ``cnnbench history --accept`` or ``--cnnbench-accept-level``): its history starts afresh
there. The judgement mirrors the single-baseline gate's (``cnnbench.results.verdicts``): a drop
beyond the threshold whose interval lies wholly below the level is a regression; one that reaches
it is within noise (the interval of this run's speedup: the level, a median of several runs, is taken
as it is); a history too short to judge says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

from cnnbench.results.changes import MIN_RUNS, ChangePoint, Segment, change_points, noise, segments
from cnnbench.results.run import Result, Run
from cnnbench.results.verdicts import Verdict, judge_change, minimums, not_judged
from cnnbench.settings.gate import MIN_ROUNDS, Gate


@dataclass(frozen=True)
class Past:
    """A saved run as the history sees it."""

    label: str  # its file name without .json: 0007_main
    run: Run
    accepted: bool = False  # marked as the start of a new level


@dataclass(frozen=True)
class Point:
    """One test's speedup in one saved run."""

    run: str  # the run's label
    speedup: float
    interval: tuple[float, float] | None
    accepted: bool = False


@dataclass(frozen=True)
class Level:
    """The protected level: the median speedup of the runs of the highest level that held."""

    speedup: float
    runs: tuple[str, ...]  # the labels of its runs, oldest first
    values: tuple[float, ...]  # their speedups


@dataclass(frozen=True)
class Track:
    """One test's speedups over saved runs, oldest first, cut into levels. An accepted run starts a
    new stretch: change points are found within each, never across one."""

    points: tuple[Point, ...]
    changes: tuple[ChangePoint, ...]  # indices into ``points``
    segments: tuple[Segment, ...]  # likewise; they cover ``points``
    start: int  # the first point of the last stretch: the most recent accepted run, or 0

    @classmethod
    def of(cls, points: Sequence[Point]) -> Track:
        starts = [0, *(i for i, point in enumerate(points) if point.accepted and i > 0), len(points)]
        changes: list[ChangePoint] = []
        cut: list[Segment] = []
        for a, b in pairwise(starts):
            stretch = points[a:b]
            values = [point.speedup for point in stretch]
            found = change_points(values, noise(values, [p.interval for p in stretch if p.interval]))
            changes += [replace(point, index=point.index + a) for point in found]
            cut += [Segment(s.start + a, s.end + a, s.level) for s in segments(values, found)]
        return cls(tuple(points), tuple(changes), tuple(cut), starts[-2] if points else 0)

    @property
    def judged_runs(self) -> int:
        """How many runs the protected level is chosen from: those since the last accepted one."""
        return len(self.points) - self.start

    @property
    def protected(self) -> Level | None:
        """The highest level of at least MIN_RUNS runs since the last accepted run; None when it is too short."""
        held = [s for s in self.segments if s.start >= self.start and s.runs >= MIN_RUNS]
        if not held:
            return None
        best = max(held, key=lambda s: s.level)
        chosen = self.points[best.start : best.end]
        return Level(best.level, tuple(p.run for p in chosen), tuple(p.speedup for p in chosen))

    @property
    def since(self) -> str | None:
        """The accepted run the last stretch starts at; None: the whole history."""
        first = self.points[self.start] if self.points else None
        return first.run if first and first.accepted else None


def points(result: Result, history: Sequence[Past]) -> list[Point]:
    """The result's test in each saved run that ran it with the same workload, oldest first."""
    out = []
    for past in history:
        old = past.run.results.get(result.name)
        if old is None or old.workload != result.workload:
            continue
        stats = past.run.speedup_stats(old)
        if stats is not None and not old.is_reference:
            out.append(Point(past.label, stats.speedup, stats.interval, past.accepted))
    return out


def stretch(history: Sequence[Past]) -> list[Past]:
    """The saved runs since the most recent accepted one, that one included."""
    starts = [i for i, past in enumerate(history) if past.accepted]
    return list(history[starts[-1] :]) if starts else list(history)


def verdicts(
    now: Run, history: Sequence[Past], gate: Gate, accepted: bool = False
) -> tuple[list[Verdict], dict[str, Level]]:
    """One verdict per result of ``now`` with a speedup over a reference other than itself, against
    the protected level of its saved ``history`` (oldest first, ``now`` not in it), and the levels
    by test name. ``accepted``: ``now`` starts a new level, so a drop is shown but does not fail."""
    out, levels = [], {}
    for result in now.results.values():
        stats = now.speedup_stats(result)
        if stats is None or result.is_reference:
            continue
        track = Track.of(points(result, history))
        verdict = _against_level(now, result, track, gate.history_fail)
        if accepted and verdict.change is not None:
            verdict = replace(verdict, verdict=f"{verdict.verdict}; accepted as a new level", failures=(), judged=True)
        out.append(minimums(verdict, gate))
        if (level := track.protected) is not None:
            levels[result.name] = level
    return out, levels


def _against_level(now: Run, result: Result, track: Track, threshold: float | None) -> Verdict:
    stats = now.speedup_stats(result)
    assert stats is not None  # only results with a speedup are judged
    if stats.interval is None:
        return not_judged(result, stats, f"too few rounds to judge ({result.rounds} < {MIN_ROUNDS})")
    if not track.points:
        return not_judged(result, stats, "no history: no saved run has this test with this workload")
    level = track.protected
    if level is None:
        since = f" since the accepted run {track.since}" if track.since else ""
        return not_judged(result, stats, f"history too short ({track.judged_runs} < {MIN_RUNS} runs{since})")
    new_speedup = now.speedup(result)
    assert new_speedup is not None  # a result with speedup stats has a speedup

    change = new_speedup.value / level.speedup - 1
    low, high = stats.interval  # the level, a median of runs, is taken as it is: this run's noise decides
    change_ci = (low / level.speedup - 1, high / level.speedup - 1)
    words, failures = judge_change(
        level.speedup, new_speedup.value, change, change_ci, threshold, "improved: a new level once it holds"
    )
    if failures:
        failures = [f"{failures[0]} below the protected level (runs {level.runs[0]}..{level.runs[-1]})"]
    return Verdict(
        result,
        stats,
        level.speedup,
        change,
        change_ci,
        words,
        judged=threshold is not None,
        failures=tuple(failures),
    )
