"""The plugin as users meet it, through pytester: options, ids, skips, saved JSON, exit codes."""

import os
from pathlib import Path

import pytest
from pytest_benchmark.utils import get_machine_id

PERF_TEST = (Path(__file__).parents[2] / "perf_tests" / "test_training.py").read_text()

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


def test_timing_under_xdist_is_refused(suite):
    result = suite.runpytest("-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: cnnbench: timings under pytest-xdist * add --benchmark-disable *"])


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


def test_a_gate_that_judged_nothing_says_so_and_keeps_the_run_status(suite):
    result = suite.runpytest("--cnnbench-min-efficiency=0.5", "-k", "no_such_test")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED  # not turned into 1
    result.stdout.fnmatch_lines(["cnnbench: gate FAILED: it judged nothing (no result has a speedup)"])
