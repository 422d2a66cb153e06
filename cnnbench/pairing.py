"""Paired rounds: a configuration's timed rounds alternate with its reference's.

Both worker groups stay up for the whole configuration, and before each of its rounds one round
of the reference runs (pytest-benchmark's ``setup``, outside its timed call). Whatever slows the
machine for a while then slows both sides of a pair alike. Reference groups are kept warm in a
pool for every configuration that pairs with them, and serve the reference's own benchmark too.
"""

from __future__ import annotations

import time

from cnnbench.cases import Case
from cnnbench.group import WorkerGroup


class References:
    """Reference worker groups by case id: started on first use, replaced if one failed, closed
    together at the end of the session."""

    def __init__(self) -> None:
        self._groups: dict[str, WorkerGroup] = {}

    def group(self, case: Case) -> WorkerGroup:
        group = self._groups.get(case.id)
        if group is not None and group.failed:
            del self._groups[case.id]
            group.close()
            group = None
        if group is None:
            group = self._groups[case.id] = WorkerGroup(case)
        return group

    def close(self) -> None:
        groups, self._groups = list(self._groups.values()), {}
        for group in groups:
            group.close()


class Pair:
    """A configuration's group and, unless it is the reference itself, its reference's group.

    ``before_round`` runs and times one reference round; ``run_round`` is the configuration's
    round, which pytest-benchmark times. Both clocks are ``time.perf_counter``, pytest-benchmark's
    default timer.
    """

    def __init__(self, group: WorkerGroup, reference: WorkerGroup | None = None):
        self.group = group
        self.reference = reference
        self.reference_seconds: list[float] = []

    def before_round(self) -> None:
        if self.reference is not None:
            start = time.perf_counter()
            self.reference.run_round()
            self.reference_seconds.append(time.perf_counter() - start)

    def run_round(self) -> None:
        self.group.run_round()

    @property
    def losses(self) -> list[float]:
        return self.group.losses
