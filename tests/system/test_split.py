"""Where a multi-device round goes, from real short runs on CPU ranks: the compute-bound speedup
(the local step alone on its device) and the sync exposed beyond it. A device that computes
slower is made by a model whose step takes twice as long there (core_named.py); test_gate.py has the rank
that waits (a straggler), which regresses against a baseline while the compute-bound speedup holds."""

import json

import pytest

from cnnbench.machine.devices import CpuKind, usable_cores

TWO_RANKS = ["--cnnbench-devices=cpu:0,1", "--cnnbench-wrappers=ddp", "--benchmark-json=out.json"]
MANY = ["--cnnbench-steps=20", "--cnnbench-rounds=3", "--cnnbench-warmup=5"]  # the one-layer step is short
pytestmark = pytest.mark.skipif(len(usable_cores()) < 2, reason="needs two cores")


def infos(suite) -> dict[str, dict]:
    """extra_info by wrapper and device set, e.g. ``ddp-cpu:0,1``."""
    benchmarks = json.loads((suite.path / "out.json").read_text())["benchmarks"]
    return {"-".join(b["param"].split("-")[-2:]): b["extra_info"] for b in benchmarks}


@pytest.mark.timing
def test_tiny_per_device_batches_bring_the_compute_bound_speedup_down(suite):
    """The one-layer model's step is mostly fixed cost at one image: halving the batch saves little."""
    bound = {}
    for batch in (2, 1024):
        run = suite.runpytest(*TWO_RANKS, "--cnnbench-models=linear", f"--cnnbench-batch-size={batch}", *MANY)
        run.assert_outcomes(passed=1)
        bound[batch] = infos(suite)["ddp-cpu:0,1"]["compute_bound_speedup"]
    assert bound[2] < 1.4 < bound[1024], bound


@pytest.mark.timing
def test_a_slower_device_in_a_mixed_set_sets_the_even_ideal_and_adds_to_the_capacity(suite, monkeypatch):
    """cpu:1 takes twice as long per step, and ranks name their devices by core, so the set is mixed.
    Under weak scaling each device's own ``single`` test measures it directly at the per-device
    batch; the ideals from ddp's paired local steps must agree with those."""
    monkeypatch.setattr(CpuKind, "describe", CpuKind.describe)  # core_named replaces it in this process too
    run = suite.runpytest(
        *("-p", "core_named", "--cnnbench-models=core_named_waits", "--cnnbench-scaling=weak"),
        *("--cnnbench-devices=cpu:0 cpu:1 cpu:0,1", "--cnnbench-wrappers=single,ddp", "--cnnbench-batch-size=8"),
        *("--cnnbench-steps=20", "--cnnbench-rounds=4", "--cnnbench-warmup=2", "--benchmark-json=out.json"),
        *(f"--deselect=test_training.py::test_train[core_named_waits-bs8-fp32-weak-ddp-cpu:{i}]" for i in (0, 1)),
    )
    run.assert_outcomes(passed=3)
    found = infos(suite)
    direct = [found[f"single-cpu:{i}"]["images_per_second"] for i in (0, 1)]
    assert direct[1] < 0.7 * direct[0], direct  # cpu:1 is the slower device
    two = found["ddp-cpu:0,1"]
    assert [(d["device"], d["alike"]) for d in two["local_steps"]] == [("cpu:0", 1), ("cpu:1", 1)]
    assert len(set(two["device_names"])) == 2
    assert two["ideal_capacity"] == pytest.approx(sum(direct) / direct[0], rel=0.2)
    assert two["compute_bound_speedup"] == pytest.approx(2 * min(direct) / direct[0], rel=0.2)
    run.stdout.fnmatch_lines(["*compute-bound*ideal capacity*busbw"])
