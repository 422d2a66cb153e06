"""Paired rounds: a configuration's timed rounds alternate with its reference's.

Every configuration but the reference itself is paired, the one-device ``ddp`` (wrapper
overhead) included. Both worker groups stay up for the whole configuration, and before each of
its rounds one round of the reference runs (pytest-benchmark's ``setup``, outside its timed
call). Whatever slows the machine for a while then slows both sides of a pair alike. Reference
groups are kept warm in a pool while their model config runs, and serve the reference's own
benchmark too.
"""

from __future__ import annotations

from collections.abc import Callable

from cnnbench.cases import Case
from cnnbench.group import WorkerGroup


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
    """A configuration's group and, unless it is the reference itself, its reference's group.

    ``before_round`` runs and times one reference round; ``run_round`` is the configuration's
    round, which pytest-benchmark times. Both are timed with ``timer``: pytest-benchmark's own.
    """

    def __init__(self, group: WorkerGroup, reference: WorkerGroup | None, timer: Callable[[], float]):
        self.group = group
        self.reference = reference
        self.timer = timer
        self.reference_seconds: list[float] = []

    def before_round(self) -> None:
        if self.reference is not None:
            start = self.timer()
            self.reference.run_round()
            self.reference_seconds.append(self.timer() - start)

    def run_round(self) -> None:
        self.group.run_round()

    @property
    def losses(self) -> list[float]:
        """Every rank's loss at the end of the last round, the reference's included."""
        return self.group.losses + (self.reference.losses if self.reference else [])
