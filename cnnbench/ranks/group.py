"""The controller side of a worker group: start the ranks once, run timed rounds, tear down.

Ranks are started with torch.distributed.elastic's ``start_processes`` (the engine behind
torchrun), forked warm from a server that has imported torch already (``cnnbench.ranks.warm``),
and meet at a TCPStore that this process hosts on a loopback socket, on a free port; the
backend's own sockets are kept on the loopback interface too. A set on several nodes starts
this node's elastic agent instead, and its ranks meet at the run's store on the address the user
named (``cnnbench.ranks.nodes``), the other nodes' agents with them. A round: set ``go/N``; every
rank runs its steps, synchronizes its device and sets ``done/N/<rank>``; the round ends when the
last rank's key is set, so the slowest rank sets the pace. A rank that exits early or a round
that outlasts the timeout fails the group.

The control channel is quiet (``cnnbench.ranks.channel``): one store connection and one waiting
thread serve the group for its whole life, so no round pays for a new connection or thread.
"""

from __future__ import annotations

import atexit
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from functools import partial

import torch.distributed as dist
from torch.distributed.elastic.multiprocessing import (
    DefaultLogsSpecs,
    PContext,
    ProcessFailure,
    RunProcsResult,
    start_processes,
)
from torch.distributed.elastic.multiprocessing.api import SignalException

from cnnbench.machine.lifeline import PARENT_PID
from cnnbench.ranks.channel import HOST, Waiter, loopback_store
from cnnbench.ranks.nodes import Nodes, agent_argv
from cnnbench.ranks.protocol import (
    CONTROL,
    FAILURES,
    STOP_SIGNALS,
    STORE_ADDRESS,
    Command,
    describe_failures,
    done,
    failure_report,
    go,
    worker_argv,
    worker_environment,
)
from cnnbench.ranks.protocol import ready as ready_key
from cnnbench.ranks.warm import START_METHOD, Inheritance, rank, server_died, start_server
from cnnbench.results.run import AllReduce
from cnnbench.settings.cases import Case
from cnnbench.workload.data import data_module
from cnnbench.workload.models import model_module
from cnnbench.workload.wrappers import wrapper_module

LOOPBACK = "lo"  # the loopback interface's name on Linux
REPORT_SECONDS = 5.0  # how long a failed multi-node group waits for every node's report of its ranks


class WorkerError(RuntimeError):
    """A rank failed, died or hung; the message names the rank and what was seen."""


_OPEN: weakref.WeakSet[WorkerGroup] = weakref.WeakSet()  # groups not closed yet: stopped at exit


@atexit.register  # before multiprocessing's own exit, which would wait for warm ranks that wait for commands
def _stop_open_groups() -> None:
    for group in list(_OPEN):
        group._procs.close()


class WorkerGroup:
    def __init__(self, case: Case, nodes: Nodes | None = None):
        self.processes = case.processes
        self.devices = case.devices
        self._nodes, self._name = nodes, None  # a multi-node group's run store, and its name there
        self.timeout = case.timeout
        self.losses: list[float] = []  # per rank, at the end of the last round
        self.failed = False  # a rank failed, died or hung: the group is of no further use
        self._sent = 0  # commands sent to the ranks
        self._busy = True  # until every rank is ready, and during rounds
        # Ctrl-C or SIGTERM while ranks are being started would leave the ones already started out of
        # reach: such a signal waits until every rank is started and the group can be torn down. The
        # threads started meanwhile (the store's, the waiter) keep it blocked for good: stop signals
        # are the main thread's to take.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        handlers = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
        self._log_dir = tempfile.mkdtemp(prefix="cnnbench-")
        self._waiter: Waiter | None = None
        try:
            if case.devices.nodes > 1:  # this node's elastic agent, which meets the other nodes' agents
                if nodes is None:
                    raise WorkerError(f"{case.devices} spans nodes: it needs a rendezvous (--cnnbench-rdzv)")
                self._name = nodes.announce(case, worker_argv(case, _modules(case)))
                self._store = dist.PrefixStore(self._name, nodes.store)
                host, self.port = nodes.endpoint.host, nodes.endpoint.port
                entrypoint, args = sys.executable, {0: agent_argv(nodes.endpoint, self._name)}
                envs = {0: {"PYTHONPATH": os.pathsep.join(sys.path), PARENT_PID: str(os.getpid())}}
            else:
                server = start_server()
                self._store = loopback_store(self.timeout)
                host, self.port = HOST, self._store.port  # the port chosen by the OS
                env = {**os.environ, **worker_environment(case, LOOPBACK), STORE_ADDRESS: f"{HOST}:{self.port}"}
                env[PARENT_PID] = str(server)  # a warm rank's parent
                entrypoint = rank
                args = dict.fromkeys(
                    range(self.processes), (Inheritance(tuple(sys.path)), case.to_json(), *_modules(case))
                )
                envs = {r: {**env, "RANK": str(r), "LOCAL_RANK": str(r)} for r in range(self.processes)}
            self._control = dist.PrefixStore(CONTROL, self._store)
            self._waiter = Waiter(self._store, host, self.port, self._name)
            try:
                self._procs = self._start(entrypoint, args, envs)
                _OPEN.add(self)
            finally:
                _restore(handlers)  # pytest's own Ctrl-C handling, before a held signal is delivered
        except BaseException:
            if self._waiter is not None:
                self._waiter.close()
            self._stop_other_nodes()
            shutil.rmtree(self._log_dir, ignore_errors=True)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            raise
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a signal held meanwhile arrives here
            ready = [json.loads(value) for value in self._await(ready_key)]
        except BaseException:
            self.close()
            raise
        self.device_names: list[str] = [name for rank in ready for name in rank["devices"]]
        compiled = [rank["compile"] for rank in ready if rank["compile"]]
        # the slowest rank's first compiled step (ranks compile side by side); None: not compiled
        self.compile_seconds: float | None = max((c["seconds"] for c in compiled), default=None)
        self.compiled_graphs: int | None = max((c["graphs"] for c in compiled), default=None)
        self._busy = False

    def _start(self, entrypoint: Callable | str, args: dict[int, tuple], envs: dict[int, dict[str, str]]) -> PContext:
        """Start the ranks, or this node's agent. Stop signals are blocked meanwhile, but a thread
        that torch started at import may take one and run torch elastic's handler (installed for
        the start): that interrupts the run, and the ranks started so far are stopped here."""
        before = set(multiprocessing.active_children())
        try:
            return start_processes(
                name="cnnbench",
                entrypoint=entrypoint,
                args=args,
                envs=envs,
                logs_specs=DefaultLogsSpecs(log_dir=self._log_dir),  # output goes to pytest's capture
                start_method=START_METHOD,  # for a function entrypoint, the warm ranks
            )
        except BaseException as error:
            for process in set(multiprocessing.active_children()) - before:
                process.kill()
                process.join()
            if isinstance(error, SignalException):
                raise KeyboardInterrupt(f"received {error.sigval.name} while ranks were started") from None
            raise

    def run_round(self, command: Command = Command.RUN) -> None:
        """One timed round: every rank runs ``case.steps`` steps; returns when the slowest is done.
        ``held``: the same steps on one batch held on the device; ``epoch``: a whole epoch."""
        self.losses = [float(value) for value in self._command(command)]

    def all_reduce(self) -> tuple[AllReduce, ...]:
        """All-reduce timings at the wrapper's gradient bucket sizes, on the group's own process
        group: per size, the slowest rank's mean. Empty for a wrapper without buckets."""
        if self.processes < 2:
            return ()
        per_rank = [json.loads(value) for value in self._command(Command.ALL_REDUCE)]  # [[bytes, seconds], ...] each
        buckets = zip(*per_rank, strict=True)  # bucket by bucket, every rank's answer
        return tuple(AllReduce(int(answers[0][0]), max(s for _, s in answers), self.processes) for answers in buckets)

    def _command(self, command: Command) -> list[bytes]:
        """Every rank's answer to one command."""
        self._sent += 1
        self._busy = True
        number = self._sent
        answers = self._await(partial(done, number), lambda: self._control.set(go(number), command.value))
        self._busy = False
        return answers

    def close(self) -> None:
        """Stop the ranks, politely if they are idle, else at once by signal; remove their logs."""
        try:
            if not self._busy:
                self._control.set(go(self._sent + 1), Command.STOP.value)
                self._procs.wait(timeout=10, period=0.05)
        finally:
            self._procs.close()
            _OPEN.discard(self)
            self._waiter.close()
            self._stop_other_nodes()
            shutil.rmtree(self._log_dir, ignore_errors=True)

    def _stop_other_nodes(self) -> None:
        """Stop the group's agents on the other nodes, if they still run."""
        if self._name is not None:
            self._nodes.finish(self._name)

    def __enter__(self) -> WorkerGroup:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _await(self, key: Callable[[int], str], command: Callable[[], None] | None = None) -> list[bytes]:
        """Every rank's value at ``key(rank)``; raises WorkerError if a rank dies or time runs out.

        The waiter thread blocks in the store until the last key is set, so the round ends that
        moment, while this thread watches the processes. It starts waiting before ``command`` (the
        ranks' go) is given, so its own wake-up is not part of the round.
        """
        keys = [f"{CONTROL}/{key(r)}" for r in range(self.processes)]
        try:
            self._waiter.start(keys)
            if command is not None:
                command()
            deadline = time.monotonic() + self.timeout
            while not self._waiter.done.wait(0.2):
                result = self._procs.wait(0)
                if result is not None:
                    raise WorkerError(self._node_reports() if self._name else self._describe(result))
                if time.monotonic() > deadline:
                    raise WorkerError(self._missing(keys, key(0).rpartition("/")[0]))
            if self._waiter.error is not None:
                raise WorkerError(f"the control channel failed: {self._waiter.error}")
            return self._waiter.values
        except BaseException:
            self.failed = True  # torn down at once: a broken group never runs beside the next one
            self._waiter.release()
            self._procs.close()
            self._stop_other_nodes()
            raise

    def _describe(self, result: RunProcsResult) -> str:
        failures = describe_failures(self._failures(result))
        return f"the warm server that started the ranks died: {failures}" if server_died() else failures

    def _failures(self, result: RunProcsResult) -> dict[int, ProcessFailure]:
        """Every rank that failed, with its own error: torch elastic reports one of a function's
        processes (the first it finds ended, not the first that failed) and stops the others."""
        if not result.failures:
            return {}
        processes = self._procs._pc.processes  # torch.multiprocessing's ProcessContext (torch 2.4-2.14)
        return {
            r: ProcessFailure(
                local_rank=r, pid=process.pid, exitcode=process.exitcode, error_file=self._procs.error_files[r]
            )
            for r, process in enumerate(processes)
            if process.exitcode
        }

    def _node_reports(self) -> str:
        """Why a multi-node group failed: each node's agent reports its ranks' failures to the store
        (its ranks' errors, in the order the reports arrived); a node that died sends none."""
        deadline = time.monotonic() + REPORT_SECONDS
        while self._store.add(FAILURES, 0) < self.devices.nodes and time.monotonic() < deadline:
            time.sleep(0.1)
        count = self._store.add(FAILURES, 0)
        reports = [self._store.get(failure_report(n)).decode() for n in range(1, count + 1)]
        if count < self.devices.nodes:
            reports.append(f"{self.devices.nodes - count} node(s) sent no report: the node or its agent died")
        return "; ".join(reports)

    def _missing(self, keys: list[str], prefix: str) -> str:
        """What a wait that timed out lacks: nodes that never took the group, else the ranks that hung."""
        if self._name is not None and (took := self._nodes.took(self._name)) < self.devices.nodes:
            return (
                f"only {took} of the {self.devices.nodes} nodes of {self.devices} arrived within {self.timeout:g} s "
                f"(--cnnbench-timeout); on each other node run: cnnbench join {self._nodes.endpoint}"
            )
        hung = [str(r) for r, key in enumerate(keys) if not self._store.check([key])]
        return f"rank {', '.join(hung)} hung: no answer within {self.timeout:g} s ({prefix})"


def _modules(case: Case) -> tuple[str, ...]:
    """The modules that register the case's model, wrapper and data kind: a rank imports them."""
    return (model_module(case.model), wrapper_module(case.wrapper), data_module(case.data.kind))


def _restore(handlers: dict) -> None:
    if threading.current_thread() is threading.main_thread():  # signal handlers belong to the main thread
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
