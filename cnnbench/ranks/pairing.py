"""Paired rounds: a configuration's timed rounds alternate with its reference's and local steps'.

Every configuration but the reference itself is paired, the one-device ``ddp`` (wrapper
overhead) included. Its worker groups stay up for the whole configuration, and before each of
its rounds one round of the reference runs, then one of the local step on each distinct device
of the set (``Case.local``: the step alone at that device's share of the batch; where it is the
reference itself, the reference's round serves). All of it runs in pytest-benchmark's ``setup``,
outside its timed call: whatever slows the machine for a while slows every side of a pair alike.
Reference groups are kept warm in a pool while their model config runs, and serve the
reference's own benchmark too; local-step groups belong to their configuration and close with it,
so a GPU holds at most the reference, one local step and the configuration's own rank.

With real data (``--cnnbench-data``) every configuration, the reference's own benchmark included,
also runs the same steps on one batch held on the device just before each of its rounds: the step
without the input pipeline, paired with the round that takes its batches from the loader.
"""

from __future__ import annotations

from collections.abc import Callable

from cnnbench.ranks.group import WorkerGroup
from cnnbench.ranks.nodes import Nodes
from cnnbench.ranks.protocol import Command
from cnnbench.results.run import AllReduce, LocalRounds
from cnnbench.settings.cases import Case


class References:
    """Reference worker groups by case id: started on first use, replaced if one failed, and
    closed once a case of another model config asks (cases run model config by model config)."""

    def __init__(self) -> None:
        self._groups: dict[str, tuple[Case, WorkerGroup]] = {}

    def group(self, case: Case) -> WorkerGroup:
        for id_, (other, group) in list(self._groups.items()):
            if other.model_config != case.model_config or group.failed:
                del self._groups[id_]
                group.close()
        if case.id not in self._groups:
            self._groups[case.id] = (case, WorkerGroup(case))
        return self._groups[case.id][1]

    def close(self) -> None:
        groups, self._groups = list(self._groups.values()), {}
        for _, group in groups:
            group.close()


class Pair:
    """A configuration's group and, unless it is the reference itself, its reference's group and
    its local steps' groups.

    ``before_round`` runs and times one reference round and one round of each local step;
    ``run_round`` is the configuration's round, which pytest-benchmark times. All are timed with
    ``timer``: pytest-benchmark's own. With ``held``, ``before_round`` also times the configuration's
    own steps on a batch held on its devices, last, just before its round.
    """

    def __init__(
        self,
        group: WorkerGroup,
        reference: WorkerGroup | None,
        timer: Callable[[], float],
        local: dict[int, tuple[Case, WorkerGroup]] | None = None,
        held: bool = False,
    ):
        self.group = group
        self.reference = reference
        self.timer = timer
        self.local = local or {}  # the local step on each distinct device, by the device's place in the set
        self.reference_seconds: list[float] = []
        self._local_seconds: dict[int, list[float]] = {index: [] for index in self.local}
        self.held = held
        self.held_seconds: list[float] = []
        self.epoch_seconds: list[float] = []  # whole epochs, each timed on its own after the rounds

    @classmethod
    def start(cls, case: Case, references: References, timer: Callable[[], float], nodes: Nodes | None = None) -> Pair:
        """Start ``case``'s groups, or take them warm from ``references``; a set on several nodes
        meets its other nodes at ``nodes``."""
        reference = case.reference
        if reference is None:
            return cls(references.group(case), None, timer, held=case.data.reads)
        reference_group = references.group(reference)  # first: if it fails, nothing is left
        group = WorkerGroup(case, nodes)
        local: dict[int, tuple[Case, WorkerGroup]] = {}
        try:
            for index in distinct(group.device_names):
                step = case.local(index)
                local[index] = step, reference_group if step == reference else WorkerGroup(step)
        except BaseException:
            for started in [group, *(g for _, g in local.values() if g is not reference_group)]:
                started.close()
            raise
        return cls(group, reference_group, timer, local, held=case.data.reads)

    def before_round(self) -> None:
        if self.reference is not None:
            self.reference_seconds.append(self._time(self.reference))
            for index, (_, group) in self.local.items():
                seconds = self.reference_seconds[-1] if group is self.reference else self._time(group)
                self._local_seconds[index].append(seconds)
        if self.held:
            self.held_seconds.append(self._time(self.group, Command.HELD))

    def run_round(self) -> None:
        self.group.run_round()

    def time_epochs(self, epochs: int) -> None:
        """After the timed rounds: ``epochs`` whole epochs of the configuration, each timed alone."""
        self.epoch_seconds = [self._time(self.group, Command.EPOCH) for _ in range(epochs)]

    def _time(self, group: WorkerGroup, command: Command = Command.RUN) -> float:
        start = self.timer()
        group.run_round(command)
        return self.timer() - start

    def paired_rounds(self, rounds: int) -> tuple[tuple[float, ...], tuple[LocalRounds, ...]]:
        """The reference's and each local step's first ``rounds`` rounds: ``--benchmark-cprofile``
        runs one more, last."""
        names = self.group.device_names
        local = tuple(
            LocalRounds(
                device=str(case.devices),
                alike=names.count(names[index]),
                images_per_round=case.global_batch * case.steps,
                seconds=tuple(self._local_seconds[index][:rounds]),
            )
            for index, (case, _) in self.local.items()
        )
        return tuple(self.reference_seconds[:rounds]), local

    def all_reduce(self) -> tuple[AllReduce, ...]:
        """After the timed rounds: the configuration's all-reduce timings (empty without buckets)."""
        return self.group.all_reduce() if self.reference is not None and not self.group.failed else ()

    def close(self) -> None:
        """Close the configuration's own groups; the reference's stays in the pool."""
        if self.reference is not None:
            for group in [self.group, *self._own_local()]:
                group.close()

    def _own_local(self) -> list[WorkerGroup]:
        return [group for _, group in self.local.values() if group is not self.reference]

    @property
    def losses(self) -> list[float]:
        """Every rank's loss at the end of the last round, the reference's and local steps' included."""
        others = [self.reference, *self._own_local()] if self.reference else []
        return self.group.losses + [loss for group in others for loss in group.losses]


def distinct(names: list[str]) -> list[int]:
    """The index of the first device of each name: devices that report the same name are alike."""
    return [i for i, name in enumerate(names) if name not in names[:i]]
