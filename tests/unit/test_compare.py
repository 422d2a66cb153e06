"""Verdicts against baselines, from saved runs in tests/data (see the README there)."""

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from cnnbench.results.run import AllReduce, LocalRounds, Result, Run
from cnnbench.results.stats import UnpairedSpeedup
from cnnbench.results.verdicts import outcome, verdicts
from cnnbench.settings.gate import Gate
from cnnbench.storage.saved import read_run

DATA = Path(__file__).parents[1] / "data"


def saved(name: str) -> list[dict]:
    return json.loads((DATA / name).read_text())["benchmarks"]


def run(name: str) -> Run:
    found, unusable = read_run(saved(name))
    assert unusable == {}
    return found


def judged(now: str, baseline: str, speedup_fail=0.2, min_efficiency=None) -> dict[str, object]:
    """Verdicts by wrapper and device set, e.g. ``ddp-cpu:0,1``."""
    found = verdicts(run(now), run(baseline), {}, Gate(speedup_fail, min_efficiency))
    return {f"{v.result.wrapper}-{v.result.device_set}": v for v in found}


def result(wrapper, devices, rounds, reference=(), name=None, workload=None) -> Result:
    return Result(
        name=name or f"t::{wrapper}-{devices}",
        model_config="m",
        wrapper=wrapper,
        device_set=f"cpu:{','.join(map(str, range(devices)))}",
        device_count=devices,
        is_reference=wrapper == "single",
        images_per_round=32,
        round_seconds=tuple(rounds),
        reference_seconds=tuple(reference),
        reference_images_per_round=32 if reference else 0,
        workload=workload or {"steps per round": "1"},
    )


@pytest.mark.parametrize("now", ["straggler.json", "paired_straggler.json"])
def test_a_straggler_rank_is_a_regression_and_names_both_speedups(now):
    baseline = "idle.json" if now == "straggler.json" else "paired_idle.json"
    found = judged(now, baseline)
    two = found["ddp-cpu:0,1"]
    assert two.verdict == "regressed" and two.judged
    assert two.change < -0.2 and two.change_ci[1] < 0
    assert two.failures[0].startswith(f"speedup {two.baseline:.2f}x -> {two.stats.speedup:.2f}x (")
    assert two.unpaired == (now == "straggler.json")
    assert found["ddp-cpu:0"].failures == ()  # the single-device runs shared no core with the load


@pytest.mark.parametrize(("now", "baseline"), [("idle2.json", "idle.json"), ("paired_idle2.json", "paired_idle.json")])
def test_an_idle_rerun_holds(now, baseline):
    found = judged(now, baseline)
    assert all(v.failures == () for v in found.values())
    assert {v.verdict for v in found.values()} <= {"held", "drop within noise", "rise within noise"}


def test_a_paired_run_compares_with_an_unpaired_baseline_and_says_so():
    base = Run([result("single", 1, [1.0, 1.01, 0.99] * 2), result("ddp", 2, [0.5, 0.51, 0.49] * 2)])
    now = Run([result("ddp", 2, [0.5, 0.52, 0.5] * 2, [1.0, 1.0, 1.02] * 2)])  # no single test in this run
    (two,) = verdicts(now, base, {}, Gate(0.2))
    assert two.unpaired and two.judged and two.verdict == "held"


def test_an_improvement_is_reported_as_a_stale_baseline_not_failed():
    two = judged("idle.json", "straggler.json")["ddp-cpu:0,1"]
    assert two.verdict == "improved: baseline may be stale, save a new one"
    assert two.failures == ()


def test_a_drop_inside_the_runs_noise_passes_as_such():
    base = Run([result("single", 1, [1.0] * 6), result("ddp", 2, [0.5] * 6, [1.0] * 6)])
    # the median pair is 60% slower, but a third of the pairs are as fast as the baseline's
    now = Run([result("single", 1, [1.0] * 6), result("ddp", 2, [0.5, 0.9, 0.5, 0.8, 0.8, 0.8], [1.0] * 6)])
    (verdict,) = verdicts(now, base, {}, Gate(0.2))
    assert verdict.change < -0.2 and verdict.change_ci[1] >= 0
    assert verdict.verdict == "drop within noise" and verdict.failures == ()


def test_a_slowdown_of_the_whole_machine_moves_both_sides_of_a_pair():
    """Most of the configuration's rounds ran while the machine was 60% slower: so did the reference
    rounds paired with them. Unpaired, the reference's rounds all ran before the slowdown."""
    slow = [0.5, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    base = Run([result("single", 1, [1.0] * 7), result("ddp", 2, [0.5] * 7, [1.0] * 7)])
    paired = Run([result("single", 1, [1.0] * 7), result("ddp", 2, slow, [1.0] + [1.6] * 6)])
    unpaired = Run([result("single", 1, [1.0] * 7), result("ddp", 2, slow)])
    (held,) = verdicts(paired, base, {}, Gate(0.2))
    (fooled,) = verdicts(unpaired, base, {}, Gate(0.2))
    assert held.verdict == "held" and held.change == pytest.approx(0.0)
    assert fooled.verdict == "regressed"


@pytest.mark.parametrize(
    ("rounds", "why"),
    [
        ([], "baseline unusable: no round times"),
        ([0.0, 0.0, 0.0], "baseline unusable: round time 0.0 is not a positive number"),
        ([float("nan")] * 3, "baseline unusable: round time nan is not a positive number"),
        (None, "baseline unusable: no round times"),
    ],
)
def test_an_unusable_baseline_entry_is_named_and_nothing_crashes(rounds, why):
    benches = copy.deepcopy(saved("idle.json"))
    two = next(b for b in benches if b["extra_info"]["device_set"] == "cpu:0,1")
    if rounds is None:
        del two["extra_info"]["round_seconds"]  # as saved by the first cnnbench
    else:
        two["extra_info"]["round_seconds"] = rounds
    baseline, unusable = read_run(benches)
    assert unusable == {two["fullname"]: why.removeprefix("baseline unusable: ")}
    found = {v.result.device_set: v for v in verdicts(run("idle2.json"), baseline, unusable, Gate(0.2))}
    assert found["cpu:0,1"].verdict == why and not found["cpu:0,1"].judged
    assert found["cpu:0"].judged


def test_a_different_workload_is_not_comparable():
    base = Run([result("ddp", 2, [0.5] * 6, [1.0] * 6, workload={"threads per rank": "1"})])
    now = Run([result("ddp", 2, [0.5] * 6, [1.0] * 6, workload={"threads per rank": "2"})])
    (verdict,) = verdicts(now, base, {}, Gate(0.2))
    assert verdict.verdict == "not comparable: threads per rank 1 -> 2"
    assert not verdict.judged and verdict.failures == ()


@pytest.mark.parametrize(("ours", "theirs", "words"), [(2, 6, "(2 < 3)"), (6, 2, "(2 < 3)"), (1, 1, "(1 < 3)")])
def test_too_few_rounds_are_not_judged(ours, theirs, words):
    base = Run([result("ddp", 2, [0.5] * theirs, [1.0] * theirs)])
    now = Run([result("ddp", 2, [0.6] * ours, [1.0] * ours)])  # 17% lower
    (verdict,) = verdicts(now, base, {}, Gate(0.05))
    assert verdict.verdict == f"too few rounds to judge {words}"
    assert not verdict.judged and verdict.failures == ()
    (efficiency,) = verdicts(now, base, {}, Gate(None, 0.99))
    assert efficiency.judged == (ours >= 3)  # this run's own rounds suffice for its efficiency


def test_results_the_baseline_lacks_are_not_judged_and_a_gate_that_judged_nothing_fails():
    found = verdicts(run("paired_idle.json"), Run(), {}, Gate(0.2))
    assert {v.verdict for v in found} == {"no baseline: the baseline has no such test"}
    assert not any(v.judged for v in found)
    failed = outcome(found, Gate(0.2), baseline_loaded=True)
    assert failed.failed and "no speedup was compared with the baseline" in failed.line
    both = outcome(verdicts(run("paired_idle.json"), Run(), {}, Gate(0.2, 0.5)), Gate(0.2, 0.5), baseline_loaded=True)
    assert both.failed  # efficiency alone was judged: the speedup gate still judged nothing
    assert outcome(found, Gate(None, 0.5), baseline_loaded=False).failed  # nothing at all was judged
    first = outcome(verdicts(run("paired_idle.json"), None, {}, Gate(0.2)), Gate(0.2), baseline_loaded=False)
    assert not first.failed and "no baseline yet" in first.line  # the first run of a new runner


def test_without_a_threshold_changes_are_shown_not_gated():
    two = judged("straggler.json", "idle.json", speedup_fail=None)["ddp-cpu:0,1"]
    assert two.verdict == "not gated" and two.change < -0.2 and two.failures == ()
    assert "no gate set" in outcome([two], Gate(), baseline_loaded=True).line


def test_efficiency_below_the_minimum_fails_with_or_without_a_baseline():
    found = verdicts(run("paired_straggler.json"), None, {}, Gate(None, 0.8))
    two = next(v for v in found if v.result.device_count == 2)
    assert two.verdict == "no baseline; efficiency too low"
    assert "is below the minimum 80%" in two.failures[0]
    result_ = outcome(found, Gate(None, 0.8), baseline_loaded=False)
    assert result_.failed and result_.line.startswith("cnnbench: gate FAILED, 1 check(s): test_train[")
    assert all(v.failures == () for v in verdicts(run("paired_idle.json"), None, {}, Gate(None, 0.5)))


def test_a_real_slowdown_of_the_whole_machine_holds_paired_where_unpaired_would_fail():
    """Both cores were busy during all of ddp cpu:0,1 but not during the single test."""
    busy = run("paired_machine_busy.json")
    two = judged("paired_machine_busy.json", "paired_idle.json")["ddp-cpu:0,1"]
    assert two.verdict == "held" and two.failures == ()
    config = next(iter(busy.configs.values()))
    result = next(r for r in config.results.values() if r.device_set == "cpu:0,1")
    unpaired = UnpairedSpeedup(result, config.reference)  # the single test's rounds, timed before the load
    assert unpaired.value < 0.7 * two.stats.speedup  # what the gate saw before pairing: a false regression


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        ({"extra_info": ["not", "a", "mapping"]}, "its extra_info is not a mapping"),
        ({"extra_info": {"model_config": ["m"]}}, "unreadable extra_info"),
        ({"fullname": ["a", "list"]}, None),  # not a test name: left out
    ],
)
def test_odd_saved_entries_are_unusable_or_left_out_never_a_crash(damage, why):
    benches = copy.deepcopy(saved("paired_idle.json"))
    odd = benches[0]
    for key, value in damage.items():
        if isinstance(value, dict):
            odd[key].update(value)
        else:
            odd[key] = value
    baseline, unusable = read_run(benches)
    if why is None:
        assert unusable == {} and len(baseline.results) == len(benches) - 1
    else:
        assert unusable[odd["fullname"]].startswith(why)


def split_result(rounds, local, buckets=()) -> Result:
    """ddp on two devices against a reference of 1.0 s per round, its local step as given."""
    base = result("ddp", 2, rounds, [1.0] * len(rounds))
    return dataclasses.replace(base, local=(LocalRounds("cpu:0", 2, 16, tuple(local)),), all_reduce=tuple(buckets))


@pytest.mark.parametrize(
    ("now", "why"),
    [
        (  # a straggler: the ranks wait; alone, a device is as fast as before
            split_result([0.9, 0.91, 0.89], [0.5, 0.51, 0.49]),
            "compute-bound speedup held at 2.00x, exposed sync grew from 100.0 to 400.0 ms per step",
        ),
        (  # a small per-device batch got slower alone, communication did not
            split_result([0.9, 0.91, 0.89], [0.8, 0.81, 0.79]),
            "compute-bound speedup fell from 2.00 to 1.25x, exposed sync held at 100.0 ms per step",
        ),
    ],
)
def test_a_regression_says_where_the_time_went(now, why):
    old = split_result([0.6, 0.61, 0.59], [0.5, 0.51, 0.49])
    (verdict,) = verdicts(Run([now]), Run([old]), {}, Gate(0.1))
    assert verdict.verdict == "regressed"
    assert verdict.failures[0].endswith(f"dropped more than 10%: {why}")


def test_all_reduce_bandwidth_is_gated_at_a_minimum_and_compared_with_the_baseline():
    bucket = AllReduce(1_000_000, 0.001, 2)  # 1 GB/s; two ranks: busbw = algbw
    now = split_result([0.6, 0.61, 0.59], [0.5, 0.51, 0.49], [bucket])
    (low,) = verdicts(Run([now]), None, {}, Gate(min_busbw=2))
    assert low.verdict == "no baseline; busbw too low" and low.judged
    assert low.failures == (
        "all-reduce busbw 1.00 GB/s (the whole gradient, 1.0 MB over 2 ranks) is below the minimum 2 GB/s",
    )
    (fine,) = verdicts(Run([now]), None, {}, Gate(min_busbw=0.5))
    assert fine.judged and fine.failures == ()
    old = split_result([0.6, 0.61, 0.59], [0.5, 0.51, 0.49], [AllReduce(1_000_000, 0.0005, 2)])
    (compared,) = verdicts(Run([now]), Run([old]), {}, Gate(0.1))
    assert "all-reduce busbw fell from 2.00 to 1.00 GB/s" in compared.explanation


def test_a_busbw_gate_with_nothing_to_measure_fails():
    dp = verdicts(Run([result("dp", 2, [0.6] * 3, [1.0] * 3)]), None, {}, Gate(min_busbw=1))
    verdict = outcome(dp, Gate(min_busbw=1), baseline_loaded=False)
    assert verdict.failed and "judged nothing" in verdict.line
