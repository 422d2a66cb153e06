"""One rank of a worker group: build the model, warm up, then run rounds on command.

Started through torch.distributed.elastic: forked warm by ``WorkerGroup`` (``cnnbench.ranks.warm``)
or, on a set of several nodes, as ``python -m cnnbench.ranks.worker`` by each node's elastic agent
(``cnnbench.ranks.agent``): ``RANK`` and ``WORLD_SIZE`` come from the
environment, with the address of the controller's TCPStore (``CNNBENCH_STORE``; under the
group's name, ``CNNBENCH_GROUP``, where the store serves several nodes' groups). The store is both
the rendezvous (prefix ``pg/``) and the control channel (prefix ``ctl/``). Between uses a group
may idle for as long as other configurations run, so a rank waits for its next command without a
deadline: if its parent dies, the kernel ends the rank (Linux), and if the controller's store
goes away, the connection drops.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import timedelta

if __name__ == "__main__":  # first: see cnnbench.machine.lifeline
    from cnnbench.machine.lifeline import RANK_NAME, die_with_parent, name_process

    die_with_parent()
    name_process(RANK_NAME)

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import record

from cnnbench.machine.devices import DEVICE_KINDS
from cnnbench.ranks.protocol import (
    CONTROL,
    GROUP_NAME,
    NO_DEADLINE,
    RENDEZVOUS,
    STOP_SIGNALS,
    STORE_ADDRESS,
    Command,
    done,
    go,
    ready,
)
from cnnbench.settings.cases import Case
from cnnbench.workload.data import Batches, Feed, make_batches
from cnnbench.workload.models import create_model
from cnnbench.workload.step import TrainingStep
from cnnbench.workload.wrappers import compiled_graphs, get_wrapper

ALL_REDUCE_WARMUP, ALL_REDUCE_ITERATIONS = 5, 20  # nccl-tests' defaults, and the fewest timed
ALL_REDUCE_SECONDS, ALL_REDUCE_MOST = 0.5, 100_000  # how long a size's timed loop lasts, at most how many


@record
def main(case_json: str, *modules: str) -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked in the controller while it started us
    for module in modules:  # register the model and the wrapper, also ones a user added
        importlib.import_module(module)
    case = Case.from_json(case_json)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    timeout = timedelta(seconds=case.timeout)
    store = controller_store(timeout)
    control = dist.PrefixStore(CONTROL, controller_store(NO_DEADLINE))  # idle as long as need be

    wrapper = get_wrapper(case.wrapper)
    devices = [torch.device(d) for d in case.devices.devices]
    kind = DEVICE_KINDS[case.devices.kind]
    if wrapper.process_per_device:
        devices = devices[rank : rank + 1]
        cores = case.cores[rank] if case.cores else []
        batch = case.device_batches[rank]
        pg_store = dist.PrefixStore(RENDEZVOUS, store)
        dist.init_process_group(kind.backend, store=pg_store, rank=rank, world_size=world_size, timeout=timeout)
    else:
        cores = [core for share in case.cores for core in share]
        batch = case.global_batch
    kind.setup(devices, cores)

    torch.manual_seed(case.seed)
    model = create_model(case.model).to(devices[0])
    if case.channels_last:
        model = model.to(memory_format=torch.channels_last)
    # a loader batch that takes half a round's timeout fails the rank, before the group calls it hung
    loading = {"workers": case.loader_workers, "timeout": case.timeout / 2, "pin_memory": kind.pin_memory}
    feed = Feed(batch, devices[0], rank, world_size, case.seed, case.channels_last, **loading)
    batches = make_batches(case.data, feed)
    wrapped = wrapper.wrap(model, devices)
    if case.compile:
        wrapped = wrapper.compile(wrapped)
    step = TrainingStep(wrapped, devices[0], case.precision)
    compiled = first_compiled_step(step, batches, devices[0], kind.synchronize) if case.compile else None
    step.run(case.warmup, batches)
    held = batches.held()
    kind.synchronize(devices[0])
    graphs = compiled_graphs() if compiled else 0
    if compiled:
        compiled["graphs"] = graphs
    warm = {"devices": [kind.describe(device) for device in devices], "compile": compiled}
    control.set(ready(rank), json.dumps(warm))

    def run_round(source: Batches = batches, steps: int = case.steps) -> str:
        step.run(steps, source)
        kind.synchronize(devices[0])
        if compiled and compiled_graphs() != graphs:  # the round's time would hold a compile
            raise CompileError(
                f"torch.compile compiled {compiled_graphs() - graphs} more graph(s) inside a timed round, "
                "after the first step and the warmup"
            )
        return str(step.loss.item())

    def run_epoch() -> str:
        """A whole epoch from its first batch: the same number of steps on every rank."""
        batches.new_epoch()
        return run_round(batches, case.data.train_images // case.global_batch)

    def all_reduce() -> str:
        sizes = [wrapper.buckets(wrapped) if wrapper.buckets else []]
        dist.broadcast_object_list(sizes, src=0)  # rank 0's buckets: every rank runs the same collectives
        return json.dumps([[size, all_reduce_seconds(size, devices[0], kind.synchronize)] for size in sizes[0]])

    commands: dict[Command, Callable[[], str]] = {
        Command.RUN: run_round,
        Command.HELD: lambda: run_round(held),  # the same steps without the input pipeline
        Command.EPOCH: run_epoch,
        Command.ALL_REDUCE: all_reduce,
    }
    number = 1
    while (command := Command(control.get(go(number)).decode())) in commands:
        control.set(done(number, rank), commands[command]())
        number += 1
    if dist.is_initialized():
        dist.destroy_process_group()


class CompileError(RuntimeError):
    """The first step of a compiled model failed, or compiled nothing; the message says why in one line."""


def first_compiled_step(
    step: TrainingStep, batches: Batches, device: torch.device, synchronize: Callable[[torch.device], None]
) -> dict[str, float | int]:
    """Run the first step of a compiled model, which compiles its forward and backward, before the
    warmup and apart from it: its seconds (one step's own work included). A failure is the
    compiler's first line: the rest of its message is advice on debugging."""
    start = time.perf_counter()
    try:
        step.run(1, batches)
        synchronize(device)
    except Exception as error:
        first_line = next(iter(str(error).strip().splitlines()), "")
        raise CompileError(f"the first compiled step failed: {type(error).__name__}: {first_line}") from error
    seconds = time.perf_counter() - start
    if compiled_graphs() == 0:
        raise CompileError(
            "torch.compile captured no graph, so the model would run eagerly: dynamo does not start "
            "tracing in torch.nn's own forward code (a plain nn.Sequential under ddp); define the "
            "model's forward in a module of your own"
        )
    return {"seconds": seconds}


def controller_store(timeout: timedelta) -> dist.Store:
    """A connection to the controller's store, under the group's name if it has one."""
    host, _, port = os.environ[STORE_ADDRESS].rpartition(":")
    store = dist.TCPStore(host, int(port), timeout=timeout)
    return dist.PrefixStore(os.environ[GROUP_NAME], store) if GROUP_NAME in os.environ else store


def all_reduce_seconds(size: int, device: torch.device, synchronize: Callable[[torch.device], None]) -> float:
    """The mean time of an all-reduce of ``size`` bytes of fp32, as nccl-tests measures it: after
    warm-up, a loop of iterations timed as a whole, the device synchronized at its end. The loop
    lasts at least ALL_REDUCE_SECONDS (a mean of 20 stalls and flips on a shared machine), the same
    number of iterations on every rank."""
    buffer = torch.ones(max(size // 4, 1), device=device)

    def loop(iterations: int) -> float:
        synchronize(device)
        start = time.perf_counter()
        for _ in range(iterations):
            dist.all_reduce(buffer)
        synchronize(device)
        return (time.perf_counter() - start) / iterations

    loop(ALL_REDUCE_WARMUP)
    probe = loop(ALL_REDUCE_ITERATIONS)
    wanted = torch.tensor([min(max(ALL_REDUCE_ITERATIONS, ALL_REDUCE_SECONDS / probe), ALL_REDUCE_MOST)], device=device)
    dist.all_reduce(wanted, op=dist.ReduceOp.MAX)  # every rank runs the same loop
    return loop(int(wanted.item()))


if __name__ == "__main__":
    main(*sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # the rank is done: tearing torch down takes about a second, which closing the group would wait for
