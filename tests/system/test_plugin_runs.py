"""The plugin's real short runs through pytester: saved speedups, compiling, xdist, registered parts, profiling."""

import json
from pathlib import Path

import pytest
import torch

PERF_TEST = (Path(__file__).parents[2] / "perf_tests" / "test_training.py").read_text()

SHORT = ["--cnnbench-steps=1", "--cnnbench-rounds=3", "--cnnbench-warmup=1"]


def test_a_short_real_run_saves_speedups(suite):
    result = suite.runpytest(
        "--cnnbench-devices=cpu:0 cpu:0,1", "--cnnbench-wrappers=single,ddp", "--benchmark-json=out.json", *SHORT
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*cnnbench: multi-device speedup*",
            "googlenet_cifar_small-bs32-fp32",
            "  wrapper  devices  images/s  speedup  * 95% CI  efficiency",
            "  single   cpu:0   * 1.00x  * 100%",
            "  ddp      cpu:0   * *x  *..*  * *%",
            "  ddp      cpu:0,1 * *x  *..*  * *%",
            "  where the time went *",
            "  wrapper  devices  compute-bound  * 95% CI  exposed sync  * 95% CI  of step * busbw",
            "  ddp      cpu:0   * 1.00x  * ms  * *%  * -",
            "  ddp      cpu:0,1 * *x  *..*  * ms  *..*  * *%  * GB/s",
            "machine: cpu-*x*; torch *",
            "note: the quick profile*",
            "cnnbench: no gate set *",
        ]
    )
    output = json.loads((suite.path / "out.json").read_text())
    assert output["machine_info"]["cnnbench"]["torch"] == torch.__version__
    saved = {b["param"]: b for b in output["benchmarks"]}
    ddp = saved["googlenet_cifar_small-bs32-fp32-ddp-cpu:0,1"]
    assert ddp["group"] == "googlenet_cifar_small-bs32-fp32"
    assert ddp["stats"]["rounds"] == 3
    info = ddp["extra_info"]
    assert {
        k: info[k]
        for k in [
            "model",
            "wrapper",
            "devices",
            "processes",
            "global_batch",
            "device_batches",
            "steps_per_round",
            "precision",
            "threads_per_rank",
            "device_names",
        ]
    } == {
        "model": "googlenet_cifar_small",
        "wrapper": "ddp",
        "devices": ["cpu:0", "cpu:1"],
        "processes": 2,
        "global_batch": 32,
        "device_batches": [16, 16],
        "steps_per_round": 1,
        "precision": "fp32",
        "threads_per_rank": 1,
        "device_names": ["CPU, 1 thread", "CPU, 1 thread"],
    }
    assert info["round_seconds"] == ddp["stats"]["data"]
    references = info["reference_seconds"]  # one reference round before each of ddp's own
    assert len(references) == 3 and info["paired"] and info["reference"].endswith("-single-cpu:0")
    ratios = sorted(ref / own for ref, own in zip(references, info["round_seconds"], strict=True))
    assert info["images_per_second"] == pytest.approx(32 / ddp["stats"]["median"])
    assert info["speedup"] == pytest.approx(ratios[1])  # the median pair
    assert info["efficiency"] == pytest.approx(info["speedup"] / 2)
    low, high = info["speedup_ci"]
    assert low <= info["speedup"] <= high
    # the local step: single on cpu:0 at 16 images, a round before each of ddp's, beside the reference's
    (local,) = info["local_steps"]
    assert (local["device"], local["alike"], local["images_per_round"]) == ("cpu:0", 2, 16)
    bound = sorted(ref / alone for ref, alone in zip(references, local["seconds"], strict=True))
    assert info["compute_bound_speedup"] == pytest.approx(bound[1])
    exposed = sorted(own - alone for own, alone in zip(info["round_seconds"], local["seconds"], strict=True))
    assert info["exposed_sync_seconds"] == pytest.approx(exposed[1])  # one step per round
    # all-reduce at DDP's bucket sizes, on the group after its rounds: together, the whole gradient
    buckets, gradient = info["all_reduce_buckets"], info["gradient_all_reduce"]
    assert sum(b["bytes"] for b in buckets) == gradient["bytes"] == 392_738 * 4  # the quick model's fp32 parameters
    for bucket in buckets:  # two ranks: busbw = algbw * 2(n-1)/n = algbw
        assert bucket["ranks"] == 2 and bucket["busbw_gbps"] == pytest.approx(bucket["algbw_gbps"])
        assert bucket["algbw_gbps"] > 0
    assert "all_reduce_buckets" not in saved["googlenet_cifar_small-bs32-fp32-ddp-cpu:0"]["extra_info"]


def test_a_compiled_run_reports_its_compile_time_beside_its_rounds(suite):
    result = suite.runpytest(
        "--cnnbench-models=linear",
        "--cnnbench-devices=cpu:0,1",
        "--cnnbench-wrappers=fsdp",
        "--cnnbench-compile",
        "--benchmark-json=out.json",
        *SHORT,
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "linear-bs32-fp32-compiled",
            "  fsdp * cpu:0,1 * *x  *..*  * *%",
            "  fsdp * cpu:0,1 * *x  *..*  * ms  *..*  * *%  * -",  # no all-reduce: fsdp reduce-scatters
            "compiled: fsdp cpu:0,1 (linear-bs32-fp32-compiled): first step * s, compiling included, "
            "before the warmup (slowest rank; 1 graph(s))",
        ]
    )
    (bench,) = json.loads((suite.path / "out.json").read_text())["benchmarks"]
    info = bench["extra_info"]
    assert bench["param"] == "linear-bs32-fp32-compiled-fsdp-cpu:0,1" and info["processes"] == 2
    assert info["compiled"] and info["compile_seconds"] > 0 and info["compiled_graphs"] == 1
    assert info["reference"] == "linear-bs32-fp32-compiled-single-cpu:0"  # the compiled single
    assert len(info["round_seconds"]) == len(info["reference_seconds"]) == 3
    assert "all_reduce_buckets" not in info


def test_xdist_functional_check_runs_every_configuration_once(suite):
    result = suite.runpytest("-n", "2", "--benchmark-disable", "--cnnbench-devices=cpu:0", "--cnnbench-models=linear")
    result.assert_outcomes(passed=3)  # single, ddp, fsdp


def test_a_wrapper_registered_by_the_user_reaches_the_ranks(suite):
    result = suite.runpytest(
        "-p",
        "user_wrapper",
        "--cnnbench-models=linear",
        "--cnnbench-devices=cpu:0,1",
        "--cnnbench-wrappers=ddp_fp16_grads",
        *SHORT,
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["  ddp_fp16_grads  cpu:0,1 * *x  *..*  * *%"])


def test_the_readme_way_to_add_a_model(suite):
    """``python -m pytest -p yourmodule perf_tests --cnnbench-models=yourmodel``, from the folder that
    holds yourmodule.py: the ranks import it too."""
    suite.makepyfile(
        yourmodule=(
            "from torch import nn\n"
            "from cnnbench.workload.models import register_model\n\n\n"
            "@register_model\n"
            "def yourmodel(num_classes=10):\n"
            "    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, num_classes))\n"
        )
    )
    result = suite.runpytest_subprocess(  # python -m pytest, which puts the working folder on sys.path
        "-p",
        "yourmodule",
        "--cnnbench-models=yourmodel",
        "--cnnbench-devices=cpu:0,1",  # its reference and local step run on cpu:0, in ranks of their own
        "--cnnbench-wrappers=ddp",
        *SHORT,
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["yourmodel-bs32-fp32", "  ddp      cpu:0,1 *"])
    assert "note: the quick profile" not in result.stdout.str()  # said only when its model ran


def test_a_profiled_run_still_pairs_its_rounds(suite):
    """--benchmark-cprofile calls the round once more after the timed ones, its setup too."""
    result = suite.runpytest(
        "--cnnbench-models=linear",
        "--cnnbench-devices=cpu:0",
        "--cnnbench-wrappers=single,ddp",
        "--benchmark-cprofile=tottime",
        "--benchmark-json=out.json",
        *SHORT,
    )
    result.assert_outcomes(passed=2)
    (ddp,) = [b for b in json.loads((suite.path / "out.json").read_text())["benchmarks"] if "ddp" in b["name"]]
    assert len(ddp["extra_info"]["reference_seconds"]) == len(ddp["extra_info"]["round_seconds"]) == 3
