"""The speedup gate as CI meets it: real short CPU runs, baselines on disk, exit codes, files."""

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from matplotlib.image import imread
from pytest_benchmark.utils import get_machine_id

from cnnbench.machine.devices import parse_device_set, usable_cores
from cnnbench.machine.environment import fingerprint, hardware_class

DATA = Path(__file__).parents[1] / "data"
# Idle reruns of these short runs moved the 2-device speedup by up to about 10%; a busy core halves it.
FAIL = "30%"
TWO_RANKS = [  # ddp on two ranks alone: its reference runs in the pool, not as a test of its own
    "--cnnbench-devices=cpu:0,1",
    "--cnnbench-wrappers=ddp",
    "--cnnbench-steps=2",
    "--cnnbench-rounds=3",
    "--cnnbench-warmup=1",
]
GATE = [*TWO_RANKS, "--benchmark-compare"]
TWO_DEVICES = "*test_train?googlenet_cifar_small-bs32-fp32-ddp-cpu:0,1?"


@contextlib.contextmanager
def busy_core():
    """Keep the cores of cpu:1 busy: a straggler rank, as a slow link or a bad driver makes one."""
    cores = parse_device_set("cpu:0,1").cores(len(usable_cores()) // 2)[1]
    spin = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True: pass"
    processes = [subprocess.Popen([sys.executable, "-c", spin, str(core)]) for core in cores]
    try:
        yield
    finally:
        for process in processes:
            process.kill()
            process.wait()


def storage(suite) -> Path:
    return suite.path / ".benchmarks" / hardware_class(fingerprint(), "cpu") / get_machine_id()


def two_devices(path: Path) -> dict:
    """The extra_info of ddp on cpu:0,1 in a saved run."""
    benchmarks = json.loads(path.read_text())["benchmarks"]
    return next(b["extra_info"] for b in benchmarks if b["param"].endswith("-ddp-cpu:0,1"))


def no_traceback(result) -> bool:
    return "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.timing
@pytest.mark.skipif(len(usable_cores()) < 2, reason="needs two cores: one to load while cpu:0 stays idle")
def test_save_then_compare_idle_then_with_a_straggler(suite):
    first = suite.runpytest(*GATE, f"--cnnbench-speedup-fail={FAIL}", "--benchmark-save=base")
    assert first.ret == pytest.ExitCode.OK
    first.stdout.fnmatch_lines(["baseline: none yet for cpu-* in *: nothing to compare with, so no speedup is gated*"])
    (saved,) = storage(suite).glob("0001_base.json")
    baseline = json.loads(saved.read_text())
    assert baseline["machine_info"]["cnnbench"]["cpu"]["cores"] == len(usable_cores())
    baseline["machine_info"]["cnnbench"]["torch"] = "2.0.0"  # as if torch was upgraded since
    saved.write_text(json.dumps(baseline))

    idle = suite.runpytest(*GATE, f"--cnnbench-speedup-fail={FAIL}", "--benchmark-autosave")
    assert idle.ret == pytest.ExitCode.OK, idle.stdout.str()
    idle.stdout.fnmatch_lines(
        [
            "*verdict",
            "  ddp      cpu:0,1 *x  *..*  *%  *x  *%  *%..*%  *",
            "baseline: *0001_base.json",
            f"gate: speedup drop beyond {FAIL} and beyond noise fails",
            f"environment changed: torch 2.0.0 -> {torch.__version__}",
        ]
    )
    assert "Benchmark machine_info is different" not in idle.stdout.str() + idle.stderr.str()

    with busy_core():  # pytest-benchmark's own compare-fail beside cnnbench's gate: both fail the run
        slow = suite.runpytest(
            *GATE,
            f"--cnnbench-speedup-fail={FAIL}",
            f"--benchmark-compare-fail=median:{FAIL}",
            "--benchmark-autosave",
            "--cnnbench-report=out/report.md",
            "--cnnbench-plot=out/speedup.png",
        )
    assert slow.ret == pytest.ExitCode.TESTS_FAILED
    slow.stderr.fnmatch_lines(
        [
            "Performance has regressed:",
            f"{TWO_DEVICES} - speedup *x -> *x (-*%, 95% CI -*%..-*%) dropped more than {FAIL}: "
            "compute-bound speedup *, exposed sync grew from * to * ms per step*",
        ]
    )
    slow.stderr.fnmatch_lines(["Performance has regressed:", f"{TWO_DEVICES}* - Field 'median' has failed*"])
    slow.stdout.fnmatch_lines(["  ddp *cpu:0,1 * regressed", "cnnbench: this run regressed, so it was not saved*"])
    # the straggler is a rank that waits, not a device that computes slower: alone, cpu:0 ran as before
    (rejected,) = storage(suite).parent.glob("rejected/*.json")
    bound = [two_devices(path)["compute_bound_speedup"] for path in (saved, rejected)]
    assert 0.75 < bound[1] / bound[0] < 1.33
    assert no_traceback(slow)
    assert sorted(p.name for p in storage(suite).glob("*.json"))[0] == "0001_base.json"
    assert len(list(storage(suite).glob("*.json"))) == 2  # the regressed run is not the next baseline
    assert len(list(storage(suite).parent.glob("rejected/*.json"))) == 1  # but kept for inspection
    report = (suite.path / "out" / "report.md").read_text()
    assert "**Failed**: 1 check(s)" in report and "| ddp | cpu:0,1 |" in report and "| regressed |" in report
    height, width, _ = imread(suite.path / "out" / "speedup.png").shape
    assert height > 200 and width > 200


def test_a_corrupt_or_missing_baseline_is_no_baseline_yet(suite):
    storage(suite).mkdir(parents=True)
    (storage(suite) / "0001_broken.json").write_text("{not json")
    result = suite.runpytest_subprocess(  # the warning is printed where the user sees it
        "--cnnbench-devices=cpu:0",
        "--cnnbench-wrappers=single",
        "--cnnbench-steps=1",
        "--cnnbench-rounds=3",
        "--cnnbench-warmup=0",
        "--benchmark-compare",
        f"--cnnbench-speedup-fail={FAIL}",
        "-W",
        "error::pytest_benchmark.logger.PytestBenchmarkWarning",  # as strict as a project may be
    )
    assert result.ret == pytest.ExitCode.OK
    result.stderr.fnmatch_lines(["*Failed to load *0001_broken.json*"])
    result.stdout.fnmatch_lines(["baseline: none yet for cpu-*"])
    assert "Can't compare" not in result.stdout.str() + result.stderr.str()  # said once, by cnnbench


def other_hardware(suite) -> None:
    saved = json.loads((DATA / "idle.json").read_text())
    saved["machine_info"]["cnnbench"]["cpu"]["model"] = "Other CPU"  # as if saved on another machine
    (suite.path / "other.json").write_text(json.dumps(saved))


def test_a_baseline_from_other_hardware_is_refused(suite):
    other_hardware(suite)
    result = suite.runpytest("--benchmark-compare=other.json", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: cnnbench: the --benchmark-compare baseline comes from cpu-*xOther_CPU, this machine is cpu-*; "
            "speedups compare only within one hardware class (--cnnbench-compare-any-hardware to compare anyway)"
        ]
    )
    assert no_traceback(result)
    allowed = suite.runpytest("--benchmark-compare=other.json", "--cnnbench-compare-any-hardware", "--collect-only")
    assert allowed.ret == pytest.ExitCode.OK


def test_a_baseline_from_another_host_in_storage_outside_the_working_directory(suite, tmp_path_factory):
    outside = tmp_path_factory.mktemp("runner-storage")  # e.g. a runner's persistent folder
    saved = json.loads((DATA / "idle.json").read_text())
    saved["machine_info"].update(node="another-runner", cnnbench=fingerprint())  # same hardware class
    folder = outside / hardware_class(fingerprint(), "cpu") / get_machine_id()
    folder.mkdir(parents=True)
    (folder / "0001_main.json").write_text(json.dumps(saved))
    result = suite.runpytest(f"--benchmark-storage={outside}", "--benchmark-compare", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stderr.fnmatch_lines(["Comparing against benchmarks from: *0001_main.json"])
    assert "machine_info is different" not in result.stdout.str() + result.stderr.str()
    assert no_traceback(result)


def test_a_plot_without_matplotlib_is_a_usage_error(suite, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    result = suite.runpytest("--cnnbench-plot=speedup.png", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: cnnbench: --cnnbench-plot needs matplotlib; *pip install 'cnnbench?plot?'"])


def test_no_report_without_results_and_it_says_so(suite):
    result = suite.runpytest("--cnnbench-report=report.md", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["cnnbench: no benchmark result, so no report or plot was written"])
    assert not (suite.path / "report.md").exists()


@pytest.mark.timing
@pytest.mark.skipif(len(usable_cores()) < 2, reason="needs two cores: one to load while cpu:0 stays idle")
@pytest.mark.parametrize("terminal", [["-q"], ["-p", "no:terminal"]])
def test_a_failed_gate_exits_1_however_the_terminal_is_set(suite, terminal):
    # no two CPU ranks reach a million GB/s: a gate that fails for certain, on the cheapest model
    result = suite.runpytest(*TWO_RANKS, "--cnnbench-models=linear", "--cnnbench-min-busbw=1000000", *terminal)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    if terminal == ["-q"]:  # judged without a single test in the run, and said last
        result.stdout.fnmatch_lines(["cnnbench: gate FAILED, 1 check(s): test_train?*ddp-cpu:0,1?: all-reduce busbw *"])


def saved_here(suite, name: str) -> Path:
    """A real saved run, as if this machine had saved it: its hardware class is this machine's."""
    storage(suite).mkdir(parents=True, exist_ok=True)
    saved = json.loads((DATA / "paired_idle.json").read_text())
    saved["machine_info"]["cnnbench"] = fingerprint()
    path = storage(suite) / name
    path.write_text(json.dumps(saved))
    return path


def test_a_named_baseline_that_matches_nothing_is_a_usage_error(suite):
    saved_here(suite, "0001_main.json")
    result = suite.runpytest("--benchmark-compare=0099", f"--cnnbench-speedup-fail={FAIL}", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: cnnbench: --benchmark-compare='0099' matches no saved run in *cpu-*; there: 0001_main.json *"]
    )
    found = suite.runpytest("--benchmark-compare=0001", "--collect-only")
    assert found.ret == pytest.ExitCode.OK


def test_a_named_baseline_under_another_hardware_class_is_refused(suite):
    saved_here(suite, "0001_main.json")
    other = suite.path / ".benchmarks" / "cpu-1xOther_CPU" / get_machine_id()
    other.mkdir(parents=True)
    (other / "0002_before-upgrade.json").write_text((DATA / "paired_idle.json").read_text())
    result = suite.runpytest("--benchmark-compare=*_before-upgrade", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: cnnbench: --benchmark-compare='*_before-upgrade' matches nothing for this machine's hardware "
            "class cpu-*, but other classes hold it: cpu-1xOther_CPU (0002_before-upgrade.json); *"
        ]
    )


def test_storage_that_is_not_a_folder_is_refused(suite):
    es = "--benchmark-storage=elasticsearch+http://127.0.0.1:9/runs/cnnbench"
    result = suite.runpytest(es, "--benchmark-compare", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: cnnbench: --benchmark-storage=elasticsearch+http://... is not supported*"])


def test_a_named_baseline_that_cannot_be_read_says_so(suite):
    storage(suite).mkdir(parents=True)
    (storage(suite) / "0001_broken.json").write_text("{not json")
    result = suite.runpytest_subprocess("--benchmark-compare=0001", "--collect-only")  # its warning stays there
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: cnnbench: --benchmark-compare='0001' matches 0001_broken.json in *could not be read*"]
    )
