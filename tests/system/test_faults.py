"""Faults fail their configuration only, are named, never hang, and leave no process behind."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from processes import listening, ranks

SMALL = [
    "-p",
    "faulty_models",
    "--cnnbench-devices=cpu:0,1",
    "--cnnbench-wrappers=ddp",
    "--cnnbench-steps=2",
    "--cnnbench-rounds=2",
    "--cnnbench-warmup=1",
    "--cnnbench-batch-size=4",
]


def test_a_raising_rank_fails_its_configuration_only(suite):
    result = suite.runpytest(*SMALL, "--cnnbench-models=raises_on_rank1,slow_linear", "--benchmark-json=out.json")
    result.assert_outcomes(passed=1, errors=0, failed=1)
    result.stdout.fnmatch_lines(
        ["*WorkerError: rank 1 failed (exit code 1): *RuntimeError: simulated CUDA out of memory*"]
    )
    assert ranks() == []


def test_a_compile_failure_fails_its_configuration_with_the_compilers_reason(suite, monkeypatch, tmp_path):
    monkeypatch.setenv("CXX", "/nonexistent/g++")  # inductor's C++ compiler, read by the ranks
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))  # nothing cached: it must compile
    args = ["--cnnbench-models=linear", "--cnnbench-devices=cpu:0", "--cnnbench-wrappers=single", "--cnnbench-compile"]
    # a new session, as a user's would be: inductor reads CXX once, at import, in the warm server
    result = suite.runpytest_subprocess(*args, "--cnnbench-steps=1", "--cnnbench-rounds=1", "--cnnbench-warmup=0")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "E *WorkerError: rank 0 failed (exit code 1): CompileError: the first compiled step failed: "
            "InductorError: InvalidCxxCompiler: No working C++ compiler found in "
            "torch._inductor.config.cpp.cxx: (None, '/nonexistent/g++')"
        ]
    )
    assert ranks() == []


@pytest.mark.parametrize(
    ("model", "seen"),
    [
        ("segfaults_on_rank1", "rank 1 failed (exit code -11): killed by SIGSEGV"),
        ("hangs_on_rank1", "rank 0, 1 hung: no answer within 8 s (done/1)"),
    ],
)
def test_a_dead_or_hung_rank_is_detected_and_torn_down(suite, model, seen):
    start = time.monotonic()
    result = suite.runpytest(*SMALL, f"--cnnbench-models={model}", "--cnnbench-timeout=8")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*{seen}*"])
    assert time.monotonic() - start < 40
    assert ranks() == []


def start_in_a_round(suite, starting: bool = False) -> subprocess.Popen:
    """pytest in a subprocess, returned once both ranks of a 20 s round are past warmup, or, if
    ``starting``, as soon as they exist (the group is starting: imports, rendezvous, warmup)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), *sys.path])}
    args = [*SMALL, "--cnnbench-models=slow_linear", "--cnnbench-steps=100"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *args],
        cwd=suite.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while len(ranks()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    if not starting:
        time.sleep(2)  # past the warmup (one step of 0.2 s), into the round
    return proc


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_no_worker_outlives_an_interrupted_session(suite, sig):
    proc = start_in_a_round(suite)
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert ranks() == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_a_group_starts_is_a_clean_interruption(suite, sig):
    suite.makeini("[pytest]\nfilterwarnings = error\n")  # as strict as this project is
    proc = start_in_a_round(suite, starting=True)
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "Traceback" not in output and "not used at all" not in output, output
    assert ranks() == []


class Stop(Exception):
    """What this test's own SIGTERM handler raises."""


def test_a_signal_while_ranks_are_started_waits_until_they_can_be_stopped(monkeypatch):
    """Delivered in the middle of starting, the signal would leave the started ranks out of reach."""
    import faulty_models  # noqa: F401  (registers slow_linear)

    from cnnbench.ranks import group
    from cnnbench.settings.config import Settings

    settings = Settings.from_values({"models": "slow_linear", "devices": "cpu:0,1", "wrappers": "ddp", "warmup": "0"})
    (case,) = settings.cases()
    start = group.start_processes

    def start_and_signal(**kwargs):
        context = start(**kwargs)
        # to the main thread, mid-start: a process-wide one may go to another thread of a long test session
        signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)
        return context

    def stop(signum, frame):
        raise Stop

    monkeypatch.setattr(group, "start_processes", start_and_signal)
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with pytest.raises(Stop):
            group.WorkerGroup(case)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert ranks() == []


def test_a_group_listens_on_loopback_only():
    import faulty_models  # noqa: F401  (registers slow_linear)

    from cnnbench.ranks.group import WorkerGroup
    from cnnbench.settings.config import Settings

    settings = Settings.from_values(
        {"models": "slow_linear", "devices": "cpu:0,1", "wrappers": "ddp", "steps": "1", "warmup": "0"}
    )
    (case,) = settings.cases()
    with WorkerGroup(case) as group:
        group.run_round()
        addresses = listening([os.getpid(), *group._procs.pids().values()])
    assert addresses and addresses <= {"127.0.0.1", "::1", "::ffff:127.0.0.1"}, addresses


def test_a_killed_controller_takes_its_workers_along(suite):
    proc = start_in_a_round(suite)
    proc.kill()  # no cleanup code runs: only the kernel can tell the ranks now
    proc.communicate()
    deadline = time.monotonic() + 10
    while ranks() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ranks() == []


def test_groups_side_by_side_get_their_own_ports():
    import faulty_models  # noqa: F401  (registers slow_linear)

    from cnnbench.ranks.group import WorkerGroup
    from cnnbench.settings.config import Settings

    settings = Settings.from_values(
        {
            "models": "slow_linear",
            "devices": "cpu:0 cpu:1 cpu:0,1",
            "wrappers": "single",
            "steps": "1",
            "warmup": "0",
            "batch-size": "2",
        }
    )
    first, second = settings.cases()
    with WorkerGroup(first) as a, WorkerGroup(second) as b:
        assert a.port != b.port
        a.run_round()
        b.run_round()
        assert len(a.losses) == len(b.losses) == 1


def test_a_failed_run_is_not_saved_as_a_baseline(suite):
    result = suite.runpytest(*SMALL, "--cnnbench-models=raises_on_rank1,slow_linear", "--benchmark-autosave")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["cnnbench: this run had failures or errors, so it was not saved as a baseline in *; kept for inspection as *"]
    )
    assert baselines(suite) == [] and len(list((suite.path / ".benchmarks").glob("*/rejected/*.json"))) == 1
    result = suite.runpytest(*SMALL, "--cnnbench-models=slow_linear", "--benchmark-autosave")
    result.assert_outcomes(passed=1)
    assert len(baselines(suite)) == 1


def baselines(suite) -> list[Path]:
    """Saved runs where --benchmark-compare looks."""
    return list((suite.path / ".benchmarks").glob("*/*/[0-9][0-9][0-9][0-9]_*.json"))
