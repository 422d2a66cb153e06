"""Verdicts on this run's speedups: against the baseline's, and against a minimum efficiency.

A change counts only when it is both beyond the threshold and outside the runs' own noise: a
drop of more than ``speedup_fail`` whose bootstrap interval lies wholly below zero is a
regression; one whose interval reaches zero is "within noise". Efficiency below
``min_efficiency`` fails only when its whole interval is below the minimum.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnbench.results import efficiency, interval, reference, speedup, throughput


@dataclass(frozen=True)
class Verdict:
    name: str  # the test's full name, by which runs match
    info: dict  # this run's result
    baseline: float | None  # the baseline's speedup
    change: float | None  # relative change of the speedup: -0.2 is 20% lower
    change_ci: tuple[float, float] | None
    verdict: str  # for people: "held", "regressed", "drop within noise", ...
    failures: tuple[str, ...]  # why this result fails the run


def baseline_results(benchmarks: list[dict]) -> dict[str, dict]:
    """A saved run's results by test name; one saved without round times counts its median once."""
    results = {}
    for bench in benchmarks:
        info = dict(bench.get("extra_info") or {})
        if "wrapper" in info:
            info.setdefault("round_seconds", [bench["stats"]["median"]])
            info.setdefault("model_config", bench.get("group"))
            results[bench["fullname"]] = info
    return results


def _percent(value: float) -> str:
    return f"{value:+.0%}"


def verdicts(
    current: dict[str, dict], baseline: dict[str, dict], speedup_fail: float | None, min_efficiency: float | None
) -> list[Verdict]:
    """One verdict per current result with a speedup other than its own reference's."""
    out = []
    for name, info in current.items():
        if info.get("speedup_ci") is None:
            continue  # the single reference itself, or no reference ran
        old = baseline.get(name)
        old_reference = reference(baseline.values(), old["model_config"]) if old else None
        if old_reference is None or old_reference is old:
            old_speedup = change = change_ci = None
            verdict, failures = "no baseline", []
        else:
            now_reference = reference(current.values(), info["model_config"])
            now_ratio, old_ratio = speedup(info, now_reference), speedup(old, old_reference)

            def relative(tp, now_ratio=now_ratio, old_ratio=old_ratio):
                return now_ratio(tp) / old_ratio(tp) - 1

            old_speedup, change, change_ci = old_ratio(throughput), relative(throughput), interval(relative)
            verdict, failures = _against_baseline(old_speedup, info["speedup"], change, change_ci, speedup_fail)
        if min_efficiency is not None and info["world_size"] > 1:
            verdict, failures = _against_minimum(info, min_efficiency, verdict, failures)
        out.append(Verdict(name, info, old_speedup, change, change_ci, verdict, tuple(failures)))
    return out


def _against_minimum(info: dict, minimum: float, verdict: str, failures: list[str]) -> tuple[str, list[str]]:
    if info["efficiency"] >= minimum:
        return verdict, failures
    upper = efficiency(info["speedup_ci"][1], info["world_size"])
    if upper >= minimum:
        return f"{verdict}; efficiency low within noise", failures
    why = f"efficiency {info['efficiency']:.0%} (95% CI up to {upper:.0%}) is below the minimum {minimum:.0%}"
    return f"{verdict}; efficiency too low", [*failures, why]


def _against_baseline(
    old: float, new: float, change: float, change_ci: tuple[float, float], threshold: float | None
) -> tuple[str, list[str]]:
    lo, hi = change_ci
    if threshold is None:
        return "not gated", []
    if change < -threshold and hi < 0:
        because = f"speedup {old:.2f}x -> {new:.2f}x ({_percent(change)}, 95% CI {_percent(lo)}..{_percent(hi)})"
        return "regressed", [f"{because} dropped more than {threshold:.0%}"]
    if change < -threshold:
        return "drop within noise", []
    if change > threshold and lo > 0:
        return "improved: baseline may be stale, save a new one", []
    if change > threshold:
        return "rise within noise", []
    return "held", []
