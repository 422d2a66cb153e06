"""One benchmark configuration: model config x wrapper x device set, with the run's sizes."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from cnnbench.machine.devices import DEVICE_KINDS, DeviceSet, parse_device_set
from cnnbench.workload.data import DataSource
from cnnbench.workload.wrappers import get_wrapper, reference_wrapper


@dataclass(frozen=True)
class Case:
    model: str
    global_batch: int  # images per step over the whole device set
    precision: str
    channels_last: bool
    scaling: str  # strong: the global batch is fixed; weak: the per-device batch is
    wrapper: str
    devices: DeviceSet
    steps: int
    rounds: int
    warmup: int
    threads_per_device: int
    timeout: float
    seed: int = 0
    data: DataSource = field(default_factory=DataSource)  # what the steps train on
    compile: bool = False  # torch.compile the wrapped model (the wrapper says how)

    @property
    def model_config(self) -> str:
        """What speedups compare across: everything but the wrapper and the devices."""
        weak = self.scaling == "weak"
        batch = self.global_batch // len(self.devices) if weak else self.global_batch
        tags = ["cl"] * self.channels_last + ["weak"] * weak + [self.data.kind] * self.data.reads
        tags += ["compiled"] * self.compile
        return "-".join([self.model, f"bs{batch}", self.precision, *tags])

    @property
    def id(self) -> str:
        return f"{self.model_config}-{self.wrapper}-{self.devices}"

    @property
    def device_batches(self) -> list[int]:
        """Images per device, as the wrapper splits the global batch."""
        return get_wrapper(self.wrapper).split(self.global_batch, len(self.devices))

    @property
    def processes(self) -> int:
        """Processes in the worker group."""
        return len(self.devices) if get_wrapper(self.wrapper).process_per_device else 1

    @property
    def cores(self) -> list[list[int]]:
        """Each device's own cores where the device kind pins processes, else empty."""
        return self.devices.cores(self.threads_per_device) if DEVICE_KINDS[self.devices.kind].pinned else []

    @property
    def reference(self) -> Case | None:
        """What this case's speedup is measured against, round by round: the reference wrapper on
        the first device of the set, at the same global batch (strong) or per-device batch (weak)."""
        if get_wrapper(self.wrapper).is_reference:
            return None
        batch = self.device_batches[0] if self.scaling == "weak" else self.global_batch
        first = self.devices.on_this_node(0)
        return dataclasses.replace(self, wrapper=reference_wrapper().name, devices=first, global_batch=batch)

    @property
    def loader_workers(self) -> int:
        """Loader worker processes of each process of the group, by the device kind's rule."""
        cores = sum(len(share) for share in self.cores) // self.processes
        return DEVICE_KINDS[self.devices.kind].loader_workers(cores, self.processes)

    def local(self, index: int) -> Case:
        """The local step on the set's ``index``-th device: the reference wrapper alone there, at
        the images that device gets. What the set could do if communication were free. On a set
        of several nodes it runs on the same device of the controller's node."""
        device = self.devices.on_this_node(index)
        batch = self.device_batches[index]
        return dataclasses.replace(self, wrapper=reference_wrapper().name, devices=device, global_batch=batch)

    def unavailable(self) -> str | None:
        """Why this machine cannot run the case (a skip reason), or None."""
        wrapper = get_wrapper(self.wrapper)
        if reason := wrapper.unavailable():
            return reason
        if self.devices.nodes > 1 and not wrapper.process_per_device:
            return f"{self.wrapper} runs in one process: it cannot span the nodes of {self.devices}"
        if self.devices.kind not in wrapper.kinds:
            return f"{self.wrapper} runs on {', '.join(wrapper.kinds)} devices only, not {self.devices}"
        if self.compile and wrapper.compile is None:
            return f"{self.wrapper} is not compiled (--cnnbench-compile): {wrapper.no_compile}"
        idle = [d for d, n in zip(self.devices.devices, self.device_batches, strict=False) if n == 0]
        idle += self.devices.devices[len(self.device_batches) :]
        if idle:
            return f"{wrapper.split_rule} leaves {', '.join(idle)} without images at a batch of {self.global_batch}"
        return self.devices.unavailable(self.threads_per_device)

    def to_json(self) -> str:
        fields = dataclasses.asdict(self)
        fields["devices"] = str(self.devices)
        return json.dumps(fields)

    @classmethod
    def from_json(cls, text: str) -> Case:
        fields = json.loads(text)
        fields["devices"] = parse_device_set(fields["devices"])
        fields["data"] = DataSource(**fields["data"])
        return cls(**fields)
