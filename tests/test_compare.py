"""Verdicts against baselines, from saved runs in tests/data (see the README there)."""

import json
from pathlib import Path

import pytest

from cnnbench.compare import baseline_results, verdicts

DATA = Path(__file__).parent / "data"


def saved(name: str) -> list[dict]:
    return json.loads((DATA / name).read_text())["benchmarks"]


def current(name: str) -> dict[str, dict]:
    """A saved run's results, as the plugin holds this run's."""
    return {bench["fullname"]: bench["extra_info"] for bench in saved(name)}


def judged(now: str, baseline: str, speedup_fail=0.2, min_efficiency=None) -> dict[str, object]:
    """Verdicts by device set and wrapper, e.g. ``ddp-cpu:0,1``."""
    found = verdicts(current(now), baseline_results(saved(baseline)), speedup_fail, min_efficiency)
    return {f"{v.info['wrapper']}-{v.info['device_set']}": v for v in found}


def test_a_straggler_rank_is_a_regression_and_names_both_speedups():
    found = judged("straggler.json", "idle.json")
    two = found["ddp-cpu:0,1"]
    assert two.verdict == "regressed"
    assert two.change < -0.2 and two.change_ci[1] < 0
    assert two.failures[0].startswith(f"speedup {two.baseline:.2f}x -> {two.info['speedup']:.2f}x (")
    assert found["ddp-cpu:0"].failures == ()  # the single-device runs shared no core with the load


def test_an_idle_rerun_holds():
    found = judged("idle2.json", "idle.json")
    assert all(v.failures == () for v in found.values())
    assert {v.verdict for v in found.values()} <= {"held", "drop within noise", "rise within noise"}


def test_an_improvement_is_reported_as_a_stale_baseline_not_failed():
    two = judged("idle.json", "straggler.json")["ddp-cpu:0,1"]
    assert two.verdict == "improved: baseline may be stale, save a new one"
    assert two.failures == ()


def result(wrapper, world_size, rounds):
    return {
        "model_config": "m",
        "wrapper": wrapper,
        "world_size": world_size,
        "global_batch": 32,
        "steps_per_round": 1,
        "round_seconds": rounds,
    }


def test_a_drop_inside_the_runs_noise_passes_as_such():
    base = {"t::single": result("single", 1, [1.0] * 6), "t::ddp": result("ddp", 2, [0.5] * 6)}
    # the median round is 40% slower, but half of the rounds are as fast as the baseline's
    now = {"t::single": result("single", 1, [1.0] * 6), "t::ddp": result("ddp", 2, [0.5, 0.9, 0.5, 0.8, 0.5, 0.8])}
    now["t::ddp"].update(speedup=1.54, speedup_ci=[1.1, 2.0], efficiency=0.77)
    (verdict,) = verdicts(now, base, 0.2, None)
    assert verdict.change < -0.2 and verdict.change_ci[1] >= 0
    assert verdict.verdict == "drop within noise" and verdict.failures == ()


def test_a_baseline_saved_without_round_times_counts_its_median():
    benches = saved("idle.json")
    for bench in benches:
        del bench["extra_info"]["round_seconds"]
    two = verdicts(current("straggler.json"), baseline_results(benches), 0.2, None)
    (regressed,) = [v for v in two if v.failures]
    assert regressed.baseline == pytest.approx(regressed.info["speedup"] / (1 + regressed.change))


def test_results_the_baseline_lacks_are_not_judged():
    found = verdicts(current("idle.json"), {}, 0.2, None)
    assert {v.verdict for v in found} == {"no baseline"} and all(v.failures == () for v in found)


def test_without_a_threshold_changes_are_shown_not_gated():
    two = judged("straggler.json", "idle.json", speedup_fail=None)["ddp-cpu:0,1"]
    assert two.verdict == "not gated" and two.change < -0.2 and two.failures == ()


def test_efficiency_below_the_minimum_fails_with_or_without_a_baseline():
    found = verdicts(current("straggler.json"), {}, None, 0.8)
    two = next(v for v in found if v.info["world_size"] == 2)
    assert two.verdict == "no baseline; efficiency too low"
    assert "is below the minimum 80%" in two.failures[0]
    assert all(v.failures == () for v in verdicts(current("idle.json"), {}, None, 0.5))
