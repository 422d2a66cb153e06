"""Device sets (``cuda:0,1,2``, ``cpu:0,1``, ``2xcuda:0,1,2,3`` on two nodes) and the device
kinds behind them.

A CPU device is one worker pinned to its own share of the cores: ``cpu:i`` owns cores
``[i*t, (i+1)*t)`` of the usable cores, where ``t`` is the same for every set of a run, so N
CPU devices have N times the compute of one and ranks never oversubscribe. A set on several
nodes has the same local devices on each; its ranks count node by node, as torchrun numbers them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import torch

LOADER_WORKERS = 4  # per GPU process, at most: a common choice for CIFAR-sized images


class DeviceKind(Protocol):
    name: str
    backend: str  # torch.distributed backend for one process per device
    pinned: bool  # a device is a share of the CPU cores, owned by its process
    socket_env: str  # the variable that keeps the backend's sockets on one network interface
    pin_memory: bool  # data loaders stage batches in page-locked host memory for the copy to the device

    def count(self) -> int:
        """How many devices of this kind the machine has (without initializing CUDA)."""

    def report(self) -> str:
        """What the library that drives this kind sees of it, for a message where devices are missing."""

    def setup(self, devices: list[torch.device], cores: list[int]) -> None:
        """Prepare this process to drive ``devices``; ``cores`` is its CPU share (CPU only)."""

    def synchronize(self, device: torch.device) -> None: ...

    def describe(self, device: torch.device) -> str: ...

    def loader_workers(self, cores: int, ranks: int) -> int:
        """Data loader worker processes for each of ``ranks`` processes on one machine, each owning
        ``cores`` cores where the kind pins processes; 0: a process loads its batches itself."""


class CudaKind:
    name = "cuda"
    backend = "nccl"
    pinned = False
    socket_env = "NCCL_SOCKET_IFNAME"
    pin_memory = True

    def count(self) -> int:
        return torch.cuda.device_count()

    def report(self) -> str:
        built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
        said = (
            f"torch sees {self.count()} CUDA device(s) (torch.cuda.is_available() is {torch.cuda.is_available()}; "
            f"torch {torch.__version__} {built})"
        )
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        return said if visible is None else f"{said} with CUDA_VISIBLE_DEVICES={visible!r}"

    def setup(self, devices: list[torch.device], cores: list[int]) -> None:
        torch.cuda.set_device(devices[0])
        torch.backends.cudnn.benchmark = True

    def synchronize(self, device: torch.device) -> None:
        torch.cuda.synchronize(device)

    def describe(self, device: torch.device) -> str:
        return torch.cuda.get_device_name(device)

    def loader_workers(self, cores: int, ranks: int) -> int:
        """LOADER_WORKERS per GPU process, fewer where the usable cores shared among the processes,
        one of each share kept for the process itself, leave less."""
        return min(LOADER_WORKERS, max(len(usable_cores()) // ranks - 1, 0))


class CpuKind:
    name = "cpu"
    backend = "gloo"
    pinned = True
    socket_env = "GLOO_SOCKET_IFNAME"
    pin_memory = False

    def count(self) -> int:
        return len(usable_cores())

    def report(self) -> str:
        return f"{self.count()} usable core(s) (CPU affinity)"

    def setup(self, devices: list[torch.device], cores: list[int]) -> None:
        os.sched_setaffinity(0, cores)
        torch.set_num_threads(len(cores))

    def synchronize(self, device: torch.device) -> None:
        pass  # CPU kernels have finished when they return

    def describe(self, device: torch.device) -> str:
        threads = torch.get_num_threads()
        return f"CPU, {threads} thread{'s' if threads > 1 else ''}"

    def loader_workers(self, cores: int, ranks: int) -> int:
        """Loading counts against the device: its workers share the rank's own cores, one fewer
        than it has, so a one-core device loads its batches in the rank itself."""
        return max(cores - 1, 0)


DEVICE_KINDS: dict[str, DeviceKind] = {kind.name: kind for kind in (CudaKind(), CpuKind())}


def usable_cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


@dataclass(frozen=True)
class DeviceSet:
    kind: str
    indices: tuple[int, ...]  # the devices on each node
    nodes: int = 1

    def __str__(self) -> str:
        local = f"{self.kind}:{','.join(map(str, self.indices))}"
        return f"{self.nodes}x{local}" if self.nodes > 1 else local

    def __len__(self) -> int:
        return self.nodes * len(self.indices)

    @property
    def devices(self) -> list[str]:
        """Every rank's device, node by node."""
        return [f"{self.kind}:{i}" for _ in range(self.nodes) for i in self.indices]

    def cores(self, threads_per_device: int) -> list[list[int]]:
        """Each CPU device's own cores on its node, node by node."""
        cores = usable_cores()
        t = threads_per_device
        return [cores[i * t : (i + 1) * t] for _ in range(self.nodes) for i in self.indices]

    def on_this_node(self, index: int) -> DeviceSet:
        """The ``index``-th device of the set, as the same device of this node."""
        return DeviceSet(self.kind, (self.indices[index % len(self.indices)],))

    def unavailable(self, threads_per_device: int) -> str | None:
        """Why this machine cannot run the set, or None if it can."""
        kind = DEVICE_KINDS[self.kind]
        have = kind.count()
        if kind.pinned:
            need = (max(self.indices) + 1) * threads_per_device
            if need > have:
                return f"{self} needs {need} cores at {threads_per_device} per device; {have} usable"
            return None
        if have == 0:
            return f"{self}: no {self.kind.upper()} device is visible"
        missing = [f"{self.kind}:{i}" for i in self.indices if i >= have]
        if missing:
            return f"{', '.join(missing)} does not exist: {have} {self.kind.upper()} devices visible"
        return None


def class_kind(kinds: Iterable[str]) -> str:
    """The device kind whose hardware class keys a run's baselines: an accelerator if any of its sets uses one."""
    kinds = list(kinds)
    return next((kind for kind in kinds if not DEVICE_KINDS[kind].pinned), kinds[0])


def parse_device_set(text: str) -> DeviceSet:
    """``cuda:0,1`` -> DeviceSet('cuda', (0, 1)); ``2xcpu:0`` -> DeviceSet('cpu', (0,), nodes=2);
    a ValueError says what is wrong."""
    example = "e.g. cuda:0,1, cpu:0 or 2xcuda:0,1 (on 2 nodes)"
    nodes, times, local = text.partition("x")
    if not times or not nodes.isdigit():
        nodes, local = "1", text
    if int(nodes) < 1:
        raise ValueError(f"bad device set {text!r}: a set spans at least 1 node ({example})")
    kind, sep, rest = local.partition(":")
    if not sep or kind not in DEVICE_KINDS:
        raise ValueError(f"bad device set {text!r}: kind must be one of {', '.join(DEVICE_KINDS)} ({example})")
    parts = rest.split(",")
    if not all(p.isdigit() for p in parts):
        raise ValueError(f"bad device set {text!r}: indices must be whole numbers ({example})")
    indices = tuple(int(p) for p in parts)
    if len(set(indices)) != len(indices):
        raise ValueError(f"bad device set {text!r}: a device is listed twice")
    return DeviceSet(kind, indices, int(nodes))


def auto_device_sets(most: int | None = None) -> list[DeviceSet]:
    """With CUDA: the first 1, 2, 4, ... GPUs and all of them; else CPU sets up to the cores.

    ``most`` caps the set size (a global batch of 32 feeds at most 32 devices).
    """
    kind = "cuda" if torch.cuda.device_count() > 0 else "cpu"
    n = DEVICE_KINDS[kind].count() if most is None else min(most, DEVICE_KINDS[kind].count())
    sizes = [1 << k for k in range(n.bit_length()) if 1 << k < n] + [n]
    return [DeviceSet(kind, tuple(range(size))) for size in sizes]
