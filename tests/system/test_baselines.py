"""No silent pass on a CI runner: a storage that knows which hardware classes it holds, baselines
found under any Python's folder, a required baseline, named devices that must be there, accepting
a run as the new baseline, and a last line that tells a failed gate from a crashed configuration.

Storages are laid out from the real runs in tests/data; most checks stop before anything runs
(``--collect-only``), the few real runs use the cheapest model on one or two CPU ranks."""

import functools
import json
import os
import re
import shlex
from pathlib import Path

import pytest
import torch
from pytest_benchmark.utils import get_machine_id

from cnnbench.cli.main import main
from cnnbench.machine.devices import usable_cores
from cnnbench.machine.environment import fingerprint, hardware_class
from cnnbench.storage.folders import ACCEPTED

DATA = Path(__file__).parents[1] / "data"
DOCS = Path(__file__).parents[2] / "docs"
SHORT = ["--cnnbench-steps=1", "--cnnbench-rounds=3", "--cnnbench-warmup=1"]
ONE_RANK = ["--cnnbench-models=linear", "--cnnbench-devices=cpu:0", "--cnnbench-wrappers=single", *SHORT]
H200 = "cuda-3xNVIDIA_H200"
DRIVER = "580.159.04"
GPUS = "cuda:0 cuda:0,1,2"  # the GPUs the documented workflow names


@functools.cache
def here() -> str:
    """This machine's hardware class for CPU sets."""
    return hardware_class(fingerprint(), "cpu")


def store(suite, hardware: str, name: str, folder: str | None = None, source: str = "paired_idle", **environment):
    """A copy of a run in tests/data as ``.benchmarks/<hardware>/<folder>/<name>.json``, with this
    machine's fingerprint changed as given; ``folder`` defaults to this Python's machine id."""
    saved = json.loads((DATA / f"{source}.json").read_text())
    saved["machine_info"]["cnnbench"] = {**fingerprint(), **environment}
    path = suite.path / ".benchmarks" / hardware / (folder or get_machine_id()) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved))
    return path


def h200s() -> list[dict]:
    return [
        {"index": i, "name": "NVIDIA H200", "memory_mib": 143771, "capability": "9.0", "uuid": f"GPU-{i}"}
        for i in range(3)
    ]


def error_line(result) -> str:
    """The one line of a usage error, after checking that it is one: exit 4, no traceback."""
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    (line,) = [line for line in result.stderr.lines if line.startswith("ERROR: ")]
    return line


def last_cnnbench_line(result) -> str:
    return [line for line in result.stdout.lines if line.startswith("cnnbench: ")][-1]


# 1. a storage that knows what it holds


def test_a_storage_holding_only_another_classes_baseline_fails_a_bare_compare(suite):
    """The GPUs vanished: automatic sets fell back to CPU ranks, whose class has no baseline."""
    store(suite, H200, "0042_main", gpus=h200s(), driver=DRIVER)
    result = suite.runpytest("--benchmark-compare", "--collect-only", "-q")
    line = error_line(result)
    assert re.fullmatch(
        rf"ERROR: cnnbench: no baseline of this machine's hardware class in \S*\.benchmarks, which holds other "
        rf"classes' only: this run: {here()}; baselines: {H200} \(newest {get_machine_id()}/0042_main\.json; "
        rf"since it: driver {DRIVER} -> none, gpus 3x NVIDIA H200 -> none\): did the GPUs disappear\? torch sees 0 "
        r"CUDA device\(s\) \(torch\.cuda\.is_available\(\) is False; torch \S+ built for CUDA \S+\); neither NVML "
        r"nor nvidia-smi answered \(no NVIDIA driver, or its tools are missing\); valid: run where those baselines "
        r"were saved \(repair this machine\), or --cnnbench-new-hardware where this machine is new to the storage",
        line,
    ), line
    new = suite.runpytest("--benchmark-compare", "--cnnbench-new-hardware", "--collect-only", "-q")
    assert new.ret == pytest.ExitCode.OK


def test_another_cpu_class_is_named_with_what_differs_and_rejected_runs_are_no_baseline(suite):
    store(suite, "cpu-64xOther_CPU", "0003_main", cpu={"model": "Other CPU", "cores": 64}, python="3.10.4")
    store(suite, here(), "20261205_101500_main", folder="rejected")  # not a baseline of this class
    line = error_line(suite.runpytest("--benchmark-compare", "--collect-only"))
    cores = fingerprint()["cpu"]
    assert (
        f"this run: {here()}; baselines: cpu-64xOther_CPU (newest {get_machine_id()}/0003_main.json; since it: "
        f"cpu 64x Other CPU -> {cores['cores']}x {cores['model']}, python 3.10.4 -> {fingerprint()['python']}); valid:"
    ) in line
    assert "did the GPUs disappear" not in line
    # a run that saves without comparing is not refused (nothing runs here: pytest-benchmark warns it saved nothing)
    saving = suite.runpytest("--benchmark-save=first", "--collect-only", "-W", "ignore:Not saving anything")
    assert saving.ret == pytest.ExitCode.OK


def test_a_baseline_saved_under_another_python_folder_is_found(suite):
    older = "Linux-CPython-3.9-64bit"
    store(suite, here(), "0007_main", folder=older, python="3.9.18")
    result = suite.runpytest("--benchmark-compare", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stderr.fnmatch_lines([f"Comparing against benchmarks from: {older}/0007_main.json"])
    # a run saved later under this Python is the newest, whatever its number
    newer = store(suite, here(), "0001_main")
    saved = json.loads(newer.read_text())
    newer.write_text(json.dumps({**saved, "datetime": "2026-12-24T10:00:00+00:00"}))
    result = suite.runpytest("--benchmark-compare", "--collect-only", "-q")
    result.stderr.fnmatch_lines([f"Comparing against benchmarks from: {get_machine_id()}/0001_main.json"])
    newer.write_text(json.dumps({**saved, "datetime": "2026-01-01T10:00:00+00:00"}))  # saved before the other
    result = suite.runpytest("--benchmark-compare", "--collect-only", "-q")
    result.stderr.fnmatch_lines([f"Comparing against benchmarks from: {older}/0007_main.json"])


def test_a_python_change_shows_in_the_environment_diff(suite):
    store(suite, here(), "0007_main", folder="Linux-CPython-3.9-64bit", python="3.9.18")
    result = suite.runpytest(*ONE_RANK, "--benchmark-compare")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines_random(
        [
            "baseline: *Linux-CPython-3.9-64bit/0007_main.json",
            f"environment changed: python 3.9.18 -> {fingerprint()['python']}",
            "note: the baseline was saved under another Python (Linux-CPython-3.9-64bit): *",
        ]
    )


# 2. --cnnbench-require-baseline


def test_require_baseline_with_an_empty_storage_fails_before_anything_runs(suite):
    line = error_line(suite.runpytest("--benchmark-compare", "--cnnbench-require-baseline", "--collect-only"))
    assert re.fullmatch(
        rf"ERROR: cnnbench: --cnnbench-require-baseline: no baseline of {here()} in \S*\.benchmarks "
        r"\(no saved run\); valid: a baseline saved from main \(--benchmark-save=main\), or one made with: "
        r"cnnbench accept RUN",
        line,
    ), line
    store(suite, here(), "20261205_101500_main", folder="rejected")
    line = error_line(suite.runpytest("--benchmark-compare", "--cnnbench-require-baseline", "--collect-only"))
    assert "(no saved run, 1 rejected (newest 20261205_101500_main.json))" in line
    store(suite, here(), "0001_main")
    found = suite.runpytest("--benchmark-compare", "--cnnbench-require-baseline", "--collect-only")
    assert found.ret == pytest.ExitCode.OK


def test_require_baseline_needs_compare_and_an_ini_key_sets_it(suite):
    line = error_line(suite.runpytest("--cnnbench-require-baseline", "--collect-only"))
    assert line.startswith("ERROR: cnnbench: --cnnbench-require-baseline fails a run that finds no baseline; valid:")
    suite.makeini("[pytest]\ncnnbench_require_baseline = true\n")
    assert error_line(suite.runpytest("--benchmark-compare", "--collect-only")).startswith(
        "ERROR: cnnbench: --cnnbench-require-baseline: no baseline of"
    )


# 3. expected devices


@pytest.fixture
def fake_nvidia_smi(suite, monkeypatch):
    """An nvidia-smi that lists three H200s on driver DRIVER, and nothing else."""
    rows = "\n".join(f"{i}, NVIDIA H200, 143771, 9.0, GPU-{i}, {DRIVER}" for i in range(3))
    fake = suite.path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\ncase "$1" in --query-gpu=*) printf "%s\\n" "{rows}";; esac\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")


@pytest.mark.parametrize("measuring", [["--benchmark-compare"], ["--benchmark-save=x"], ["--cnnbench-min-busbw=1"]])
def test_named_gpus_that_are_not_there_fail_at_once(suite, measuring):
    line = error_line(suite.runpytest("--cnnbench-devices=cuda:0 cuda:0,1,2", *measuring, "--collect-only"))
    assert re.fullmatch(
        r"ERROR: cnnbench: --cnnbench-devices names cuda:0, which this machine does not have \(cuda:0: no CUDA "
        r"device is visible\): torch sees 0 CUDA device\(s\) \(torch\.cuda\.is_available\(\) is False; torch \S+ "
        r"built for CUDA \S+\); neither NVML nor nvidia-smi answered \(no NVIDIA driver, or its tools are "
        r"missing\); valid: the devices this machine has \(a run that saves, compares or gates fails rather than "
        r"skip a set it names\)",
        line,
    ), line


def test_the_driver_sees_gpus_that_torch_does_not(suite, fake_nvidia_smi, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    line = error_line(suite.runpytest("--cnnbench-devices=cuda:0,1,2", "--benchmark-compare", "--collect-only"))
    assert (
        f"(cuda:0,1,2: no CUDA device is visible): torch sees 0 CUDA device(s) (torch.cuda.is_available() is False; "
        f"torch {torch.__version__} built for CUDA {torch.version.cuda}) with CUDA_VISIBLE_DEVICES='0,1,2'; "
        f"NVML/nvidia-smi: driver {DRIVER}, 3x NVIDIA H200; valid:"
    ) in line
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)  # one GPU lost
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    line = error_line(suite.runpytest("--cnnbench-devices=cuda:0,1,2", "--benchmark-compare", "--collect-only"))
    assert "names cuda:0,1,2, which this machine does not have (cuda:2 does not exist: 2 CUDA devices visible)" in line
    assert "torch sees 2 CUDA device(s) (torch.cuda.is_available() is True;" in line


def test_a_named_cpu_set_beyond_the_cores_fails_a_measuring_run_and_is_skipped_elsewhere(suite):
    many = f"--cnnbench-devices=cpu:0,{len(usable_cores())}"  # one core more than there are
    line = error_line(suite.runpytest(many, "--benchmark-json=out.json", "--collect-only"))
    assert "which this machine does not have (" in line and "usable core(s) (CPU affinity)" in line
    exploring = suite.runpytest(many, "--cnnbench-wrappers=ddp", "--benchmark-disable", "-rs")
    exploring.assert_outcomes(skipped=1)


# 4. cnnbench accept


def accept(capsys, *args) -> tuple[int, list[str], str]:
    capsys.readouterr()  # what in-process pytest runs printed before
    status = main(["accept", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def test_accept_moves_a_rejected_run_in_and_the_next_compare_uses_it(suite, capsys):
    old = store(suite, here(), "0001_main")
    rejected = store(suite, here(), "20261205_101500_main", folder="rejected", source="paired_straggler")
    status, out, err = accept(capsys, "rejected/*_main")
    kept = suite.path / ".benchmarks" / here() / get_machine_id() / "0002_accepted_main.json"
    assert (status, err) == (0, "")
    assert out == [
        f"cnnbench: accepted {rejected.relative_to(suite.path)} as {kept.relative_to(suite.path)}: the next "
        f"--benchmark-compare of {here()} compares with it",
        f"cnnbench: it replaces {old.relative_to(suite.path)} as the baseline",
    ]
    copy, original = json.loads(kept.read_text()), json.loads(rejected.read_text())
    assert copy.pop(ACCEPTED)["from"] == f"{here()}/rejected/20261205_101500_main.json"
    assert copy == original and rejected.exists() and old.exists()  # the run's own content; nothing moved
    result = suite.runpytest("--benchmark-compare", "--collect-only", "-q")
    result.stderr.fnmatch_lines([f"Comparing against benchmarks from: {get_machine_id()}/0002_accepted_main.json"])
    assert accept(capsys, kept)[1] == [f"cnnbench: {kept} is already the baseline of {here()}; nothing was copied"]
    assert len(list(kept.parent.glob("*.json"))) == 2


def test_accept_says_so_where_a_run_saved_later_stays_the_baseline(suite, capsys):
    """A run saved under another Python with a time ahead of this machine's clock: nothing is copied."""
    later = store(suite, here(), "0009_main", folder="Linux-CPython-3.9-64bit")
    later.write_text(json.dumps({**json.loads(later.read_text()), "datetime": "2099-01-01T00:00:00+00:00"}))
    outside = suite.path / "run.json"  # a --benchmark-json file
    outside.write_text(json.dumps({**json.loads(later.read_text()), "datetime": "2026-12-01T00:00:00+00:00"}))
    status, out, err = accept(capsys, outside)
    assert (status, out) == (4, [])
    assert err == (
        f"cnnbench: error: RUN {outside}: {later.relative_to(suite.path)} was saved later than this machine's clock "
        "says it is now, so a run accepted now cannot replace it as the baseline; nothing was copied\n"
    )
    assert list((later.parent.parent / get_machine_id()).glob("*.json")) == []


def test_accept_refuses_what_is_not_a_baseline_of_the_class(suite, capsys):
    other = store(suite, "cpu-64xOther_CPU", "0001_main", cpu={"model": "Other CPU", "cores": 64})
    store(suite, here(), "0001_main")
    misplaced = suite.path / ".benchmarks" / here() / "rejected" / "20261205_101500_x.json"
    misplaced.parent.mkdir(parents=True)
    misplaced.write_text(other.read_text())
    status, out, err = accept(capsys, misplaced)
    assert (status, out) == (4, [])
    assert err == (
        f"cnnbench: error: RUN {misplaced} ran on cpu-64xOther_CPU, not {here()}: a run is a baseline of its own "
        "class only\n"
    )
    status, _, err = accept(capsys, "0099")
    assert status == 4 and err.startswith("cnnbench: error: RUN '0099' matches no saved run in .benchmarks; there: ")
    bare = suite.path / "bare.json"
    bare.write_text(json.dumps({**json.loads(other.read_text()), "machine_info": {}}))
    status, _, err = accept(capsys, bare)
    assert (status, err) == (
        4,
        f"cnnbench: error: RUN {bare}: no machine_info.cnnbench, so its hardware class is unknown\n",
    )


# 5. a last line a job can act on


def test_a_configuration_that_failed_to_run_is_said_last_apart_from_the_gate(suite):
    result = suite.runpytest(
        "-p",
        "faulty_models",
        "--cnnbench-models=raises_on_rank1",
        "--cnnbench-devices=cpu:0,1",
        "--cnnbench-wrappers=ddp",
        "--cnnbench-batch-size=4",
        "--cnnbench-min-efficiency=0.1",
        *SHORT,
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "cnnbench: gate FAILED: it judged nothing (no result has a speedup)",
            "cnnbench: 1 configuration(s) failed to run: test_train?raises_on_rank1-bs4-fp32-ddp-cpu:0,1?: "
            "*WorkerError: rank 1 failed (exit code 1): *RuntimeError: simulated CUDA out of memory*; "
            "the gate FAILED too (above)",
        ]
    )
    assert last_cnnbench_line(result).startswith("cnnbench: 1 configuration(s) failed to run: ")


def test_pytest_benchmarks_own_regression_is_a_failed_gate_line(suite):
    saved = suite.runpytest(*ONE_RANK, "--benchmark-save=base")
    assert saved.ret == pytest.ExitCode.OK
    (path,) = (suite.path / ".benchmarks" / here() / get_machine_id()).glob("0001_base.json")
    run = json.loads(path.read_text())
    for bench in run["benchmarks"]:  # as if every round had once taken a thousandth of the time
        bench["stats"].update({key: bench["stats"][key] / 1000 for key in ("min", "max", "mean", "median")})
    path.write_text(json.dumps(run))
    result = suite.runpytest(*ONE_RANK, "--benchmark-compare", "--benchmark-compare-fail=median:5%")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert re.fullmatch(
        r"cnnbench: gate FAILED, 1 --benchmark-compare-fail check\(s\): test_train\[linear-bs32-fp32-single-cpu:0\] "
        r"\(0001_base\): Field 'median' has failed PercentageRegressionCheck: \S+ > 5\.0+",
        last_cnnbench_line(result),
    ), last_cnnbench_line(result)


def test_the_failed_to_run_line_names_the_first_and_counts_the_rest():
    from cnnbench.results.verdicts import failed_to_run

    crashed = [("perf_tests/test_training.py::test_train[a]", "x" * 400), ("t.py::test_train[b]", "")]
    line = failed_to_run(crashed, gate_failed=False)
    assert line == f"cnnbench: 2 configuration(s) failed to run: test_train[a]: {'x' * 297}... (and 1 more)"
    assert failed_to_run(crashed[1:], gate_failed=True) == (
        "cnnbench: 1 configuration(s) failed to run: test_train[b]: no reason given; the gate FAILED too (above)"
    )


# the CI workflow in docs/baselines.md, with CPU sets in place of GPUs


def workflow_command(event: str, storage: Path, devices: str) -> list[str]:
    """The workflow's pytest command as GitHub would run it for ``event``, the suite's folder left out."""
    page = (DOCS / "baselines.md").read_text()
    (block,) = re.findall(r"```yaml\n(.*?)```", page, re.DOTALL)
    folded = re.search(r"run: >\n((?: {10}.*\n)+)", block).group(1)
    command = " ".join(line.strip() for line in folded.splitlines())
    push, other = re.search(r"\$\{\{ github.event_name == 'push' && '(.*?)' \|\| '(.*?)' \}\}", command).groups()
    command = re.sub(r"\$\{\{.*?\}\}", push if event == "push" else other, command)
    command = command.replace("$STORAGE", str(storage)).replace("$DEVICES", devices)
    program, folder, *args = shlex.split(command)
    assert (program, folder) == (".venv/bin/pytest", "perf_tests")
    assert f"DEVICES: {GPUS}" in block  # the GPUs the workflow names
    return args


def test_the_documented_workflow_runs_here_with_cpu_sets(suite, tmp_path):
    storage = tmp_path / "runner"  # a folder outside the working folder, as on a runner
    pull_request = workflow_command("pull_request", storage, "cpu:0 cpu:0,1")
    assert "--cnnbench-require-baseline" in pull_request and "--benchmark-compare" in pull_request
    line = error_line(suite.runpytest(*pull_request, "--collect-only"))
    assert line.startswith("ERROR: cnnbench: --cnnbench-require-baseline: no baseline of ")
    push = workflow_command("push", storage, "cpu:0 cpu:0,1")
    assert "--benchmark-save=main" in push and "--cnnbench-require-baseline" not in push
    first = suite.runpytest(*push, "--collect-only", "-W", "ignore:Not saving anything")  # nothing ran to save
    assert first.stderr.lines == [] and "Comparing against" not in first.stdout.str()  # accepted: no baseline yet
    assert last_cnnbench_line(first) == "cnnbench: gate FAILED: it judged nothing (no result has a speedup)"  # ran none
    saved = json.loads((DATA / "paired_idle.json").read_text())
    saved["machine_info"]["cnnbench"] = fingerprint()
    (storage / here() / get_machine_id()).mkdir(parents=True, exist_ok=True)
    (storage / here() / get_machine_id() / "0001_main.json").write_text(json.dumps(saved))
    compared = suite.runpytest(*pull_request, "--collect-only")
    assert "ERROR" not in compared.stderr.str()
    compared.stderr.fnmatch_lines([f"Comparing against benchmarks from: {get_machine_id()}/0001_main.json"])
    line = error_line(suite.runpytest(*workflow_command("push", storage, GPUS), "--collect-only"))
    assert line.startswith("ERROR: cnnbench: --cnnbench-devices names cuda:0, which this machine does not have")
