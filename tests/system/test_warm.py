"""Ranks start warm: forked from one server that imported torch once, named, bound to it, and
never touching CUDA before a rank picks its device."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import ranks

from cnnbench.machine.lifeline import RANK_NAME
from cnnbench.ranks.warm import PRELOAD


def test_the_server_imports_its_preload_list_without_touching_cuda():
    """A process that initialised CUDA cannot fork ranks that use it: the server only imports."""
    probe = (
        "import torch\n"
        "def trap(name):\n"
        "    def touched(*args, **kwargs): raise SystemExit(f'CUDA touched at import: {name}')\n"
        "    return touched\n"
        "for name in ('init', '_lazy_init', 'device_count', 'is_available', 'current_device', 'set_device'):\n"
        "    setattr(torch.cuda, name, trap(name))\n"
        "torch._C._cuda_getDeviceCount = trap('_cuda_getDeviceCount')\n"
        f"for module in {[m for m in PRELOAD if m != 'cnnbench.ranks.server']!r}:\n"
        "    __import__(module)\n"
        "print('imported')\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "imported", done.stdout + done.stderr


def small_case(devices: str = "cpu:0,1"):
    import faulty_models  # noqa: F401  (registers slow_linear)

    from cnnbench.settings.config import Settings

    values = {"models": "slow_linear", "devices": devices, "wrappers": "ddp", "steps": "1", "warmup": "0"}
    (case,) = Settings.from_values(values).cases()
    return case


def parent_and_name(pid: int) -> tuple[int, str]:
    name, rest = Path(f"/proc/{pid}/stat").read_text().split(" (", 1)[1].rsplit(") ", 1)
    return int(rest.split()[1]), name


def test_ranks_are_forked_from_one_server_and_named():
    from cnnbench.ranks.group import WorkerGroup
    from cnnbench.ranks.warm import start_server

    server = start_server()
    with WorkerGroup(small_case()) as first, WorkerGroup(small_case()) as second:
        pids = [*first._procs.pids().values(), *second._procs.pids().values()]
        assert [parent_and_name(pid) for pid in pids] == [(server, RANK_NAME)] * 4
        first.run_round()
        second.run_round()
    assert start_server() == server  # the same server serves the next groups
    assert ranks() == []


def test_a_killed_server_takes_its_ranks_along_and_fails_the_group():
    from cnnbench.ranks.group import WorkerError, WorkerGroup
    from cnnbench.ranks.warm import start_server

    with WorkerGroup(small_case()) as group:
        os.kill(start_server(), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while ranks() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ranks() == []
        with pytest.raises(WorkerError, match=r"^the warm server that started the ranks died: rank 0 failed"):
            group.run_round()
    with WorkerGroup(small_case()) as group:  # a new server for the next group
        group.run_round()
    assert ranks() == []
