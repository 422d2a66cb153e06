"""A process started for a run dies with the process that started it: a rank with the controller
or its node's agent, an agent with the controller or ``cnnbench join``. Light on purpose: it runs
before torch's import, which takes seconds, so a parent killed meanwhile takes the child along.
"""

import ctypes
import os
import signal
import sys

RANK_NAME = "cnnbench-rank"  # every rank's process name, as ``ps -e`` and /proc/PID/comm show it
PARENT_PID = "CNNBENCH_PARENT_PID"  # set by the parent: who the child must outlive no longer
PR_SET_PDEATHSIG, PR_SET_NAME = 1, 15


def killed_with_parent() -> None:
    """Linux: the kernel kills this process when its parent dies, even by SIGKILL."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def die_with_parent() -> None:
    """Killed with the parent that set PARENT_PID, or gone now if that parent already is."""
    killed_with_parent()
    if os.getppid() != int(os.environ[PARENT_PID]):
        sys.exit(f"cnnbench: the process that started this one (pid {os.environ[PARENT_PID]}) exited first")


def name_process(name: str) -> None:
    """Linux: the name ``ps`` and /proc/PID/comm show for this process (at most 15 bytes)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NAME, name.encode()[:15])
