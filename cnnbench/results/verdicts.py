"""Verdicts on this run's speedups: against the baseline's, and against a minimum efficiency.

A change counts only when it is both beyond the threshold and outside the runs' own noise: a
drop of more than ``speedup_fail`` whose bootstrap interval lies wholly below zero is a
regression; one whose interval reaches zero is "within noise". Efficiency below
``min_efficiency`` fails only when its whole interval is below the minimum. A result that cannot
be judged says why ("no baseline", "not comparable: ...", "too few rounds ..."), never passes
silently: with a gate set, a run in which nothing could be judged fails. An all-reduce bus
bandwidth below ``min_busbw`` fails too, as nccl-tests' users gate on a minimum bandwidth.

Against a baseline, a verdict also says where a change came from: the compute-bound speedup, the
exposed sync per step and the all-reduce bus bandwidth, then and now. The history gate
(``cnnbench.results.levels``) judges against a protected level in the same words and by the same
outcome rule.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cnnbench.results.run import Result, Run, SpeedupStats
from cnnbench.results.stats import Speedup, interval
from cnnbench.settings.gate import MIN_ROUNDS, Gate, gate_flags


@dataclass(frozen=True)
class Verdict:
    result: Result  # this run's
    stats: SpeedupStats
    baseline: float | None  # the baseline's speedup
    change: float | None  # relative change of the speedup: -0.2 is 20% lower
    change_ci: tuple[float, float] | None
    verdict: str  # for people: "held", "regressed", "drop within noise", ...
    judged: bool  # compared with a baseline, or checked against the minimum efficiency
    failures: tuple[str, ...]  # why this result fails the run
    unpaired: bool = False  # the baseline's speedup came from unpaired rounds (an older cnnbench)
    explanation: tuple[str, ...] = ()  # where the time went, baseline -> now


def _percent(value: float) -> str:
    return f"{value:+.0%}"


def verdicts(now: Run, baseline: Run | None, unusable: dict[str, str], gate: Gate) -> list[Verdict]:
    """One verdict per result of this run with a speedup over a reference other than itself.

    ``baseline`` is None when no baseline was compared; ``unusable`` holds its results that could
    not be read, with the reason.
    """
    out = []
    for result in now.results.values():
        stats = now.speedup_stats(result)
        if stats is None or result.is_reference:
            continue
        out.append(minimums(_against_baseline(now, result, stats, baseline, unusable, gate.speedup_fail), gate))
    return out


def minimums(verdict: Verdict, gate: Gate) -> Verdict:
    """The verdict with the gate's minimum efficiency and bus bandwidth checked too."""
    result = verdict.result
    if gate.min_efficiency is not None and result.device_count > 1:
        verdict = _against_minimum(verdict, gate.min_efficiency)
    if gate.min_busbw is not None and result.gradient is not None:
        verdict = _against_busbw(verdict, gate.min_busbw)
    return verdict


def not_judged(result: Result, stats: SpeedupStats, why: str, baseline: float | None = None) -> Verdict:
    return Verdict(result, stats, baseline, None, None, why, judged=False, failures=())


def _against_baseline(
    now: Run,
    result: Result,
    stats: SpeedupStats,
    baseline: Run | None,
    unusable: dict[str, str],
    threshold: float | None,
) -> Verdict:
    if stats.interval is None:
        return not_judged(result, stats, f"too few rounds to judge ({result.rounds} < {MIN_ROUNDS})")
    if baseline is None:
        return not_judged(result, stats, "no baseline")
    if result.name in unusable:
        return not_judged(result, stats, f"baseline unusable: {unusable[result.name]}")
    old = baseline.results.get(result.name)
    if old is None:
        return not_judged(result, stats, "no baseline: the baseline has no such test")
    differs = [
        f"{key} {old.workload.get(key, '?')} -> {value}"
        for key, value in result.workload.items()
        if old.workload.get(key) != value
    ]
    if differs:
        return not_judged(result, stats, f"not comparable: {', '.join(differs)}")
    old_speedup: Speedup | None = baseline.speedup(old)
    if old_speedup is None:
        return not_judged(result, stats, "no baseline: the baseline's run has no reference for it")
    new_speedup = now.speedup(result)
    assert new_speedup is not None  # a result with speedup stats has a speedup
    few = min(new_speedup.samples, old_speedup.samples)
    if few < MIN_ROUNDS:
        return not_judged(result, stats, f"too few rounds to judge ({few} < {MIN_ROUNDS})", baseline=old_speedup.value)

    def relative(rng) -> float:
        return new_speedup.draw(rng) / old_speedup.draw(rng) - 1

    change = new_speedup.value / old_speedup.value - 1
    change_ci = interval(relative)
    words, failures = judge_change(old_speedup.value, new_speedup.value, change, change_ci, threshold)
    explanation = explain(old, result)
    if failures and explanation:
        failures = [f"{failures[0]}: {', '.join(explanation)}"]
    return Verdict(
        result,
        stats,
        old_speedup.value,
        change,
        change_ci,
        words,
        judged=threshold is not None,
        failures=tuple(failures),
        unpaired=not old_speedup.paired,
        explanation=tuple(explanation),
    )


HELD = 0.10  # a figure within 10% of the baseline's, or whose interval holds it, reads "held"


def explain(old: Result, new: Result) -> list[str]:
    """Where a change of speedup came from, baseline -> now: the compute-bound speedup (the
    local step against the reference), the exposed sync per step, the all-reduce bus bandwidth."""
    out = []
    if old.split and new.split:
        bound = old.split.compute_bound, new.split.compute_bound, new.split.compute_bound_interval
        out.append(_moved("compute-bound speedup", *bound, "{:.2f}", "x"))
        ms = 1000
        interval_ms = new.split.exposed_sync_interval and tuple(v * ms for v in new.split.exposed_sync_interval)
        sync = old.split.exposed_sync * ms, new.split.exposed_sync * ms, interval_ms
        out.append(_moved("exposed sync", *sync, "{:.1f}", " ms per step"))
    if old.gradient and new.gradient:
        out.append(_moved("all-reduce busbw", old.gradient.busbw, new.gradient.busbw, None, "{:.2f}", " GB/s"))
    return out


def _moved(what: str, old: float, new: float, new_interval: tuple[float, float] | None, number: str, unit: str) -> str:
    within = new_interval is not None and new_interval[0] <= old <= new_interval[1]
    if within or abs(new - old) <= HELD * abs(old):
        return f"{what} held at {number.format(new)}{unit}"
    return f"{what} {'grew' if new > old else 'fell'} from {number.format(old)} to {number.format(new)}{unit}"


STALE = "improved: baseline may be stale, save a new one"


def judge_change(
    old: float,
    new: float,
    change: float,
    change_ci: tuple[float, float],
    threshold: float | None,
    improved: str = STALE,
) -> tuple[str, list[str]]:
    """The words for a change of speedup from ``old`` to ``new``, and why it fails, if it does: a drop
    beyond ``threshold`` fails only when its whole interval is below zero."""
    lo, hi = change_ci
    if threshold is None:
        return "not gated", []
    if change < -threshold and hi < 0:
        because = f"speedup {old:.2f}x -> {new:.2f}x ({_percent(change)}, 95% CI {_percent(lo)}..{_percent(hi)})"
        return "regressed", [f"{because} dropped more than {threshold:.0%}"]
    if change < -threshold:
        return "drop within noise", []
    if change > threshold and lo > 0:
        return improved, []
    if change > threshold:
        return "rise within noise", []
    return "held", []


def _against_minimum(verdict: Verdict, minimum: float) -> Verdict:
    stats = verdict.stats
    if stats.interval is None:
        return verdict  # too few rounds: the verdict says so
    if stats.efficiency >= minimum:
        return replace(verdict, judged=True)
    upper = stats.interval[1] / verdict.result.device_count
    if upper >= minimum:
        return replace(verdict, verdict=f"{verdict.verdict}; efficiency low within noise", judged=True)
    why = f"efficiency {stats.efficiency:.0%} (95% CI up to {upper:.0%}) is below the minimum {minimum:.0%}"
    failures = (*verdict.failures, why)
    return replace(verdict, verdict=f"{verdict.verdict}; efficiency too low", judged=True, failures=failures)


def _against_busbw(verdict: Verdict, minimum: float) -> Verdict:
    gradient = verdict.result.gradient
    assert gradient is not None
    if gradient.busbw >= minimum:
        return replace(verdict, judged=True)
    why = (
        f"all-reduce busbw {gradient.busbw:.2f} GB/s (the whole gradient, {gradient.bytes / 1e6:.1f} MB over "
        f"{gradient.ranks} ranks) is below the minimum {minimum:g} GB/s"
    )
    return replace(verdict, verdict=f"{verdict.verdict}; busbw too low", judged=True, failures=(*verdict.failures, why))


@dataclass(frozen=True)
class Outcome:
    """The gate's result over the whole run."""

    failed: bool
    line: str  # one line for people, the last thing the summary prints
    failures: tuple[tuple[str, str], ...]  # (test name, why), for the regression list


def outcome(
    verdicts: list[Verdict],
    gate: Gate,
    baseline_loaded: bool,
    against: str = "the baseline",
    none_yet: str = "no baseline yet",
) -> Outcome:
    """Failed if any check failed, or if a gate judged nothing it was set to judge: the speedup gate
    compared nothing with a loaded baseline, or no check ran at all. The first run's speedup gate,
    with no baseline yet, passes and says so. The history gate reads the same: ``against`` is the
    history's protected level, ``baseline_loaded`` says that the history is long enough to hold
    one, and ``none_yet`` why it is not."""
    failures = tuple((v.result.name, why) for v in verdicts for why in v.failures)
    judged = [v for v in verdicts if v.judged]
    skipped = [v for v in verdicts if not v.judged]
    example = f"{short_name(skipped[0].result.name)}: {skipped[0].verdict}" if skipped else "no result has a speedup"
    if not gate.set:
        return Outcome(False, f"cnnbench: no gate set ({', '.join(gate_flags())})", ())
    if failures:
        name, why = failures[0]
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        return Outcome(
            True, f"cnnbench: gate FAILED, {len(failures)} check(s): {short_name(name)}: {why}{more}", failures
        )
    if gate.drop_fail is not None and baseline_loaded and not any(v.change is not None for v in verdicts):
        return Outcome(True, f"cnnbench: gate FAILED: no speedup was compared with {against} ({example})", ())
    if not judged:
        if gate.min_efficiency is None and gate.min_busbw is None and not baseline_loaded:
            return Outcome(False, f"cnnbench: gate passed: {none_yet}, so no speedup was judged", ())
        return Outcome(True, f"cnnbench: gate FAILED: it judged nothing ({example})", ())
    line = f"cnnbench: gate passed: {len(judged)} result(s) judged"
    if skipped:
        line += f"; {len(skipped)} not judged, e.g. {example}"
    return Outcome(False, line, ())


def failed_to_run(crashed: list[tuple[str, str]], gate_failed: bool) -> str:
    """The last line of a run in which configurations failed or errored, given as (test id, first
    line of why): apart from the gate's line, so that a job tells a crash from a regression."""
    name, why = crashed[0]
    why = (why if len(why) <= 300 else why[:297] + "...") or "no reason given"
    more = f" (and {len(crashed) - 1} more)" if len(crashed) > 1 else ""
    also = "; the gate FAILED too (above)" if gate_failed else ""
    return f"cnnbench: {len(crashed)} configuration(s) failed to run: {short_name(name)}: {why}{more}{also}"


def compare_fail_line(regressions: list[tuple[str, str]]) -> str:
    """The gate's line where pytest-benchmark's own ``--benchmark-compare-fail`` alone failed the
    run, given its (name, why) regressions."""
    if not regressions:
        return "cnnbench: gate FAILED: pytest-benchmark's --benchmark-compare-fail (see its list above)"
    (name, why), more = regressions[0], f" (and {len(regressions) - 1} more)" if len(regressions) > 1 else ""
    return f"cnnbench: gate FAILED, {len(regressions)} --benchmark-compare-fail check(s): {name}: {why}{more}"


def short_name(name: str) -> str:
    """A test's name without its file: ``test_train[...]``."""
    return name.rpartition("::")[2]
