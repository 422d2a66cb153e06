"""The plugin as users meet it, through pytester: options, ids, skips, saved JSON, exit codes."""

import json
import os
from pathlib import Path

import pytest
import torch
from pytest_benchmark.utils import get_machine_id

PERF_TEST = (Path(__file__).parents[1] / "perf_tests" / "test_training.py").read_text()

SHORT = ["--cnnbench-steps=1", "--cnnbench-rounds=3", "--cnnbench-warmup=1"]


def test_help_lists_every_option_with_its_default(suite):
    result = suite.runpytest("--help")
    result.stdout.fnmatch_lines(["cnnbench: multi-device CNN training benchmarks:", "*--cnnbench-profile=PROFILE*"])
    for flag in [
        "models",
        "devices",
        "wrappers",
        "batch-size",
        "scaling",
        "steps",
        "rounds",
        "warmup",
        "precision",
        "channels-last",
        "data",
        "epochs",
        "compile",
        "timeout",
        "speedup-fail",
        "min-efficiency",
        "min-busbw",
        "compare-any-hardware",
        "require-baseline",
        "new-hardware",
        "report",
        "plot",
    ]:
        result.stdout.fnmatch_lines([f"*--cnnbench-{flag}*"])
    result.stdout.fnmatch_lines(
        ["  cnnbench_steps (string):", "*training steps per timed round (default: the profile's)"]
    )
    result.stdout.fnmatch_lines(["  cnnbench_channels_last (bool):", "*channels_last memory format (default: false)"])
    result.stdout.fnmatch_lines(["  --cnnbench-data=DATA *", "*never downloaded) (default: synthetic)"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cnnbench-models=vgg"], "ERROR: --cnnbench-models: unknown 'vgg'; valid: *"),
        (["--cnnbench-devices=gpu:0"], "ERROR: --cnnbench-devices: bad device set 'gpu:0': *"),
        (["--cnnbench-steps=0"], "ERROR: --cnnbench-steps: got '0'; valid: a whole number >= 1"),
        (["--cnnbench-speedup-fail=20"], "ERROR: --cnnbench-speedup-fail: got '20'; valid: a percentage such as 20%*"),
        (["--cnnbench-min-efficiency=high"], "ERROR: --cnnbench-min-efficiency: got 'high'; valid: *"),
        (["--cnnbench-min-busbw=0"], "ERROR: --cnnbench-min-busbw: got '0'; valid: a bandwidth in GB/s*"),
        (["--cnnbench-speedup-fail=20%"], "ERROR: cnnbench: --cnnbench-speedup-fail compares with a baseline; *"),
    ],
)
def test_bad_options_are_one_line_usage_errors(suite, args, message):
    result = suite.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_ini_keys_are_read_and_checked(suite):
    suite.makeini("[pytest]\ncnnbench_devices = cpu:0\ncnnbench_wrappers = single\ncnnbench_precision = bf16\n")
    result = suite.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        ["test_training.py::test_train[googlenet_cifar_small-bs32-bf16-single-cpu:0]", "1 test collected*"]
    )
    suite.makeini("[pytest]\ncnnbench_rounds = many\n")
    result = suite.runpytest("--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: cnnbench_rounds in {suite.path / 'tox.ini'}: got 'many'; valid: *"])
    suite.makeini("[pytest]\ncnnbench_channels_last = maybe\n")
    result = suite.runpytest("--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: cnnbench_channels_last in {suite.path / 'tox.ini'}: *; valid: true or false"])
    suite.makeini("[pytest]\ncnnbench_channels_last = yes\ncnnbench_devices = cpu:0\ncnnbench_wrappers = single\n")
    result = suite.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_train?googlenet_cifar_small-bs32-fp32-cl-single-cpu:0?"])


def test_ids_and_skip_reasons(suite):
    result = suite.runpytest(
        "-v",
        "-rs",
        "--benchmark-disable",
        "--cnnbench-models=googlenet_cifar",
        "--cnnbench-devices=cuda:0 cuda:0,1,2 cpu:0,1,2,3,4,5,6,7",
        "--cnnbench-channels-last",
        "--cnnbench-wrappers=single,dp",
    )
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines_random(
        [
            "*::test_train?googlenet_cifar-bs32-fp32-cl-single-cuda:0? SKIPPED*",
            "*::test_train?googlenet_cifar-bs32-fp32-cl-dp-cuda:0,1,2? SKIPPED*",
            "*::test_train?googlenet_cifar-bs32-fp32-cl-dp-cpu:0,1,2,3,4,5,6,7? SKIPPED*",
            "SKIPPED * test_training.py: cuda:0: no CUDA device is visible",
            "SKIPPED * test_training.py: cuda:0,1,2: no CUDA device is visible",
            "SKIPPED * test_training.py: dp runs on cuda devices only, not cpu:0,1,2,3,4,5,6,7",
        ]
    )


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


def test_timing_under_xdist_is_refused(suite):
    result = suite.runpytest("-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: cnnbench: timings under pytest-xdist * add --benchmark-disable *"])


def test_xdist_functional_check_runs_every_configuration_once(suite):
    result = suite.runpytest("-n", "2", "--benchmark-disable", "--cnnbench-devices=cpu:0", "--cnnbench-models=linear")
    result.assert_outcomes(passed=3)  # single, ddp, fsdp


UNRELATED = """
import os
import signal
import sys
import time


def test_unrelated():
    assert [m for m in ("torch", "torchvision", "cnnbench.plugin.session") if m in sys.modules] == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_benchmarked(benchmark):
    benchmark.pedantic(time.sleep, args=(float(os.environ.get("NAP", "0.001")),), rounds=3)
"""


def test_an_unrelated_run_meets_nothing_of_cnnbench(pytester, monkeypatch):
    """No torch, no nvidia-smi, no storage change, no signal handler and no xdist refusal where
    no cnnbench option is given and no cnnbench suite is collected."""
    pytester.makepyfile(test_other=UNRELATED)
    marker = pytester.path / "nvidia-smi-was-called"
    fake = pytester.path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\ntouch {marker}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    result = pytester.runpytest_subprocess("--benchmark-storage=store", "--benchmark-autosave")
    result.assert_outcomes(passed=2)
    assert not marker.exists()
    (saved,) = (pytester.path / "store").glob("*/*.json")
    assert saved.parent.name == get_machine_id()  # pytest-benchmark's own layout, no hardware class
    assert "cnnbench:" not in result.stdout.str()
    spread = pytester.runpytest_subprocess("-n", "2")
    spread.assert_outcomes(passed=2)
    monkeypatch.setenv("NAP", "0.05")  # fifty times slower: pytest-benchmark's own gate fails, as it should
    slower = pytester.runpytest_subprocess(
        "--benchmark-storage=store", "--benchmark-compare", "--benchmark-compare-fail=min:100%"
    )
    assert "Performance has regressed" in slower.stdout.str() + slower.stderr.str()
    assert "INTERNALERROR" not in slower.stdout.str() + slower.stderr.str()
    assert not marker.exists()


def test_a_cnnbench_test_without_the_suite_flag_is_told_how_to_switch_it_on(pytester):
    pytester.makepyfile(test_training=PERF_TEST)
    result = pytester.runpytest("--collect-only")
    result.stdout.fnmatch_lines(["*cnnbench is off in this run: put `CNNBENCH_SUITE = True` in the conftest.py *"])
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error
    on = pytester.runpytest("--collect-only", "-q", "--cnnbench-devices=cpu:0", "--cnnbench-wrappers=single")
    on.stdout.fnmatch_lines(["1 test collected*"])  # any cnnbench option switches it on


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


def test_a_gate_that_judged_nothing_says_so_and_keeps_the_run_status(suite):
    result = suite.runpytest("--cnnbench-min-efficiency=0.5", "-k", "no_such_test")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED  # not turned into 1
    result.stdout.fnmatch_lines(["cnnbench: gate FAILED: it judged nothing (no result has a speedup)"])
