"""The controller side of a worker group: start the ranks once, run timed rounds, tear down.

Ranks are started with torch.distributed.elastic's ``start_processes`` (the engine behind
torchrun) and meet at a TCPStore that this process hosts on loopback, on a free port.
A round: set ``go/N``; every rank runs its steps, synchronizes its device and sets
``done/N/<rank>``; the round ends when the last rank's key is set, so the slowest rank
sets the pace. A rank that exits early or a round that outlasts the timeout fails the group.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from datetime import timedelta

import torch.distributed as dist
from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, RunProcsResult, start_processes
from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

from cnnbench.cases import Case
from cnnbench.models import model_module

HOST = "127.0.0.1"


class WorkerError(RuntimeError):
    """A rank failed, died or hung; the message names the rank and what was seen."""


class WorkerGroup:
    def __init__(self, case: Case):
        self.world_size = case.world_size
        self.timeout = case.timeout
        self.losses: list[float] = []  # per rank, at the end of the last round
        self._round = 0
        self._busy = True  # until every rank is ready, and during rounds
        self._log_dir = tempfile.mkdtemp(prefix="cnnbench-")
        self._store = dist.TCPStore(
            HOST, 0, is_master=True, wait_for_workers=False, timeout=timedelta(seconds=self.timeout)
        )
        self._control = dist.PrefixStore("ctl", self._store)
        self.port = self._store.port  # chosen by the OS
        env = {
            "WORLD_SIZE": str(self.world_size),
            "MASTER_ADDR": HOST,
            "MASTER_PORT": str(self.port),
            "PYTHONPATH": os.pathsep.join(sys.path),  # ranks import the model's module as this process does
            "CNNBENCH_CONTROLLER_PID": str(os.getpid()),
        }
        if case.devices.kind == "cpu":
            env["OMP_NUM_THREADS"] = str(case.threads_per_device)
        handlers = {
            sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
        }
        argv = ("-m", "cnnbench.worker", case.to_json(), model_module(case.model))
        self._procs = start_processes(
            name="cnnbench",
            entrypoint=sys.executable,
            args=dict.fromkeys(range(self.world_size), argv),
            envs={r: {**env, "RANK": str(r), "LOCAL_RANK": str(r)} for r in range(self.world_size)},
            logs_specs=DefaultLogsSpecs(log_dir=self._log_dir),  # output goes to pytest's capture
        )
        for sig, handler in handlers.items():  # keep pytest's own Ctrl-C handling
            signal.signal(sig, handler)
        try:
            self.device_names = [value.decode() for value in self._await("ready")]
        except BaseException:
            self.close()
            raise
        self._busy = False

    def run_round(self) -> None:
        """One timed round: every rank runs ``case.steps`` steps; returns when the slowest is done."""
        self._round += 1
        self._busy = True
        self._control.set(f"go/{self._round}", "run")
        self.losses = [float(value) for value in self._await(f"done/{self._round}")]
        self._busy = False

    def close(self) -> None:
        """Stop the ranks, politely if they are idle, else at once by signal; remove their logs."""
        try:
            if not self._busy:
                self._control.set(f"go/{self._round + 1}", "stop")
                self._procs.wait(timeout=10, period=0.05)
        finally:
            self._procs.close()
            shutil.rmtree(self._log_dir, ignore_errors=True)

    def __enter__(self) -> WorkerGroup:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _await(self, prefix: str) -> list[bytes]:
        """Every rank's ``prefix/<rank>`` value; raises WorkerError if a rank dies or time runs out.

        The store's own blocking wait runs on a helper thread so the round ends the moment the
        last key is set, while this thread watches the processes.
        """
        keys = [f"ctl/{prefix}/{r}" for r in range(self.world_size)]
        client = dist.TCPStore(HOST, self.port, timeout=timedelta(seconds=self.timeout))
        done = threading.Event()

        def wait() -> None:
            try:
                client.wait(keys)
                done.set()
            except dist.DistError:
                pass  # the store timed out: the watcher below reports it

        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        deadline = time.monotonic() + self.timeout
        try:
            while not done.wait(0.2):
                result = self._procs.wait(0)
                if result is not None:
                    raise WorkerError(_describe_exit(result))
                if time.monotonic() > deadline:
                    hung = [str(r) for r, key in enumerate(keys) if not self._store.check([key])]
                    raise WorkerError(f"rank {', '.join(hung)} hung: no answer within {self.timeout:g} s ({prefix})")
            return [client.get(key) for key in keys]
        finally:
            if not done.is_set():  # release the waiter before its store goes away
                for key in keys:
                    self._store.set(key, "")
            waiter.join()


def _describe_exit(result: RunProcsResult) -> str:
    """One line: the rank that failed first, with its own error, then the ranks that followed."""
    if not result.failures:
        return "every rank exited before the run ended"
    stopped_by_us = (-signal.SIGTERM, -signal.SIGKILL)
    failures = sorted(result.failures.items(), key=lambda f: (f[1].exitcode in stopped_by_us, f[1].timestamp, f[0]))
    parts = [f"rank {rank} failed (exit code {f.exitcode}): {_error_of(f)}" for rank, f in failures]
    return "; then ".join(parts)


def _error_of(failure: ProcessFailure) -> str:
    message = failure.error_file_data.get("message")
    if isinstance(message, dict):
        message = message.get("message")
    if not message or message == "<NONE>":  # no error file: the process died without a Python error
        return f"killed by {failure.signal_name()}"
    return message
