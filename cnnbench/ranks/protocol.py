"""What the controller and its ranks (and a node's agent) say to each other through the store.

The controller hosts one TCPStore per group (or, across nodes, one for the run, each group under
its name). Under ``pg/`` the ranks meet as a process group; under ``ctl/`` the controller talks
to them: a rank sets ``ready/<rank>`` once warm, the controller sets ``go/<n>`` to a ``Command``,
and every rank answers ``done/<n>/<rank>`` when the command is done on its device. Any value not
a command (``stop``) ends a rank. A multi-node group's agents count their failure reports under
``failures`` and leave each at ``failures/<n>``.
"""

from __future__ import annotations

import enum
import os
import signal
import sys
from datetime import timedelta

from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

from cnnbench.machine.devices import DEVICE_KINDS
from cnnbench.machine.lifeline import PARENT_PID
from cnnbench.settings.cases import Case

WORKER_MODULE = "cnnbench.ranks.worker"  # what a rank runs: ``python -m WORKER_MODULE CASE_JSON MODULE...``
STORE_ADDRESS, GROUP_NAME = "CNNBENCH_STORE", "CNNBENCH_GROUP"  # how a rank finds the controller's store
CONTROL, RENDEZVOUS = "ctl", "pg"  # the store's prefixes for the control channel and the process group
FAILURES = "failures"  # a multi-node group's counter of failure reports from the nodes' agents, and their prefix
NO_DEADLINE = timedelta(days=365)  # store waits end by a key being set, never by a store timeout
# the signals that stop a run; torch elastic sets its own handlers for them while it starts ranks
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class Command(enum.Enum):
    RUN = "run"  # the timed round: ``case.steps`` steps
    HELD = "held"  # the same steps on one batch held on the device (no input pipeline)
    EPOCH = "epoch"  # a whole epoch of the data set from its first batch
    ALL_REDUCE = "all_reduce"  # all-reduce timings at the wrapper's gradient bucket sizes
    STOP = "stop"  # leave


def ready(rank: int) -> str:
    return f"ready/{rank}"


def go(number: int) -> str:
    return f"go/{number}"


def done(number: int, rank: int) -> str:
    return f"done/{number}/{rank}"


def failure_report(number: int) -> str:
    return f"{FAILURES}/{number}"


def worker_argv(case: Case, modules: tuple[str, ...]) -> tuple[str, ...]:
    """A rank's command line after the interpreter: the case, and the modules of its registered parts."""
    return ("-m", WORKER_MODULE, case.to_json(), *modules)


def worker_environment(case: Case, interface: str) -> dict[str, str]:
    """What every rank of ``case``'s group on this node gets besides its rank and the store's
    address: its backend's sockets on ``interface`` unless the user chose one."""
    env = {
        "WORLD_SIZE": str(case.processes),
        "PYTHONPATH": os.pathsep.join(sys.path),  # ranks import the model's module as this process does
        PARENT_PID: str(os.getpid()),
    }
    kind = DEVICE_KINDS[case.devices.kind]
    if kind.socket_env not in os.environ:
        env[kind.socket_env] = interface
    if kind.pinned:
        env["OMP_NUM_THREADS"] = str(case.threads_per_device)
    return env


def describe_failures(failures: dict[int, ProcessFailure]) -> str:
    """One line: the rank that failed first, with its own error, then the ranks that followed. A
    rank that died without a Python error (a signal, ``os._exit``) comes before the ranks whose
    errors say a peer went away, and ranks that cnnbench stopped come last."""
    if not failures:
        return "every rank exited before the run ended"
    stopped_by_us = (-signal.SIGTERM, -signal.SIGKILL)
    failures = sorted(
        failures.items(), key=lambda f: (f[1].exitcode in stopped_by_us, _has_error(f[1]), _when(f[1]), f[0])
    )
    parts = [f"rank {rank} failed (exit code {f.exitcode}): {_error_of(f)}" for rank, f in failures]
    return "; then ".join(parts)


def _has_error(failure: ProcessFailure) -> bool:
    return os.path.isfile(failure.error_file)


def _when(failure: ProcessFailure) -> float:
    """When the rank failed: its error file's time to the nanosecond (the time inside it is in whole
    seconds, which ties a rank's own error with the one it caused on another rank)."""
    try:
        return os.stat(failure.error_file).st_mtime
    except OSError:
        return float(failure.timestamp)


def _error_of(failure: ProcessFailure) -> str:
    message = failure.error_file_data.get("message")
    if isinstance(message, dict):
        message = message.get("message")
    if not message or message == "<NONE>":  # no error file: the process died without a Python error
        return f"killed by {failure.signal_name()}" if failure.exitcode < 0 else "exited without a Python error"
    return message
