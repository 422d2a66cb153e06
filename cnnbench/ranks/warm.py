"""Ranks that start warm: forked from a server that has already imported torch, torchvision and
the rank's code, instead of a new interpreter per rank that imports them again (about 2.5 s per
rank on a 2-core machine, before the model is built).

The server is multiprocessing's forkserver with a preload list, the start method torch elastic's
``start_processes`` takes for a function entrypoint; one serves the controller's groups for its
whole life. It imports and never runs: CUDA is first touched in a rank, once the rank has picked
its device. Lifelines: the server dies with the controller (``cnnbench.ranks.server``), a rank
with the server. A rank takes from the controller, at the moment its group starts, what the
server froze when it started: the import path and the standard output and error (pytest
captures each test's output on other files).

Values read once at import stay as they were when the server started (an environment variable
that torch reads at import, changed later in the controller, does not reach the ranks); the
environment itself is the controller's of the moment.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import signal
import sys
import threading
from multiprocessing import reduction
from pathlib import Path

from cnnbench.machine.lifeline import RANK_NAME, die_with_parent, name_process

PRELOAD = ("cnnbench.ranks.server", "cnnbench.ranks.worker", "torchvision")  # the server first: its lifeline
START_METHOD = "forkserver"


def start_server() -> int:
    """Start the warm server if it is not running (it loads in the background; the first rank
    waits for it); returns its process id. Call from the main thread: the server's lifeline is
    bound to the thread that starts it."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("cnnbench starts its warm server from the main thread only")
    multiprocessing.get_context(START_METHOD).set_forkserver_preload(list(PRELOAD))
    server = multiprocessing.forkserver._forkserver  # the one server of this process (CPython 3.9-3.14)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    try:
        server.ensure_running()
    finally:  # starting multiprocessing's resource tracker unblocks SIGINT and SIGTERM in this thread
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    return server._forkserver_pid


def server_died() -> bool:
    """Whether the warm server has died (Linux: read from /proc)."""
    pid = multiprocessing.forkserver._forkserver._forkserver_pid
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[0]
    except (OSError, IndexError):
        return pid is not None
    return state in ("Z", "X")


class Inheritance:
    """What a warm rank takes from the controller when its group starts: the import path, and
    standard output and error as file descriptors passed along with the rank (pickled through the
    start, never elsewhere)."""

    def __init__(self, path: tuple[str, ...], stdout: object = None, stderr: object = None):
        self.path, self._stdout, self._stderr = path, stdout, stderr

    def __reduce__(self):
        return Inheritance, (self.path, reduction.DupFd(1), reduction.DupFd(2))

    def take(self) -> None:
        sys.path[:] = self.path
        for received, fd in ((self._stdout, 1), (self._stderr, 2)):
            if received is not None:
                own = received.detach()
                os.dup2(own, fd)
                os.close(own)


def rank(inheritance: Inheritance, case_json: str, *modules: str) -> None:
    """A warm rank: bound to the server, named, with the controller's path and streams, then the
    rank's work (``cnnbench.ranks.worker.main``). torch elastic has set its environment."""
    die_with_parent()  # the environment names the server as this process's parent
    name_process(RANK_NAME)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the server ignores Ctrl-C; a rank does not
    multiprocessing.set_start_method(None, force=True)  # a loader's workers start as in a new process, not here
    inheritance.take()
    from cnnbench.ranks.worker import main  # preloaded: no import happens here

    main(case_json, *modules)
