"""Speedups with bootstrap intervals: a speedup measured in pairs or, for runs saved before
pairing, against the reference result of the same run; and the seeded bootstrap behind every
interval cnnbench shows (2000 draws, the 2.5th to 97.5th percentile: the same data always give
the same interval)."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

from cnnbench.settings.gate import MIN_ROUNDS

if TYPE_CHECKING:
    from cnnbench.results.run import Result

DRAWS = 2000
LEVEL = 0.95


class Speedup(Protocol):
    """A result's speedup over its reference, and how to draw it again from resampled rounds."""

    paired: ClassVar[bool]

    @property
    def value(self) -> float: ...

    @property
    def samples(self) -> int:
        """Rounds (or pairs) behind the figure."""

    def draw(self, rng: random.Random) -> float: ...


@dataclass(frozen=True)
class PairedSpeedup:
    ratios: tuple[float, ...]  # per pair: the result's throughput over its reference's
    paired: ClassVar[bool] = True

    @classmethod
    def of(cls, result: Result) -> PairedSpeedup:
        ours, theirs = result.images_per_round, result.reference_images_per_round
        pairs = zip(result.round_seconds, result.reference_seconds, strict=True)
        return cls(tuple(ours * ref / (theirs * own) for own, ref in pairs))

    @property
    def value(self) -> float:
        return statistics.median(self.ratios)

    @property
    def samples(self) -> int:
        return len(self.ratios)

    def draw(self, rng: random.Random) -> float:
        return statistics.median(rng.choices(self.ratios, k=len(self.ratios)))


@dataclass(frozen=True)
class UnpairedSpeedup:
    result: Result
    reference: Result
    paired: ClassVar[bool] = False

    @property
    def value(self) -> float:
        return self.result.images_per_second / self.reference.images_per_second

    @property
    def samples(self) -> int:
        return min(self.result.rounds, self.reference.rounds)

    def draw(self, rng: random.Random) -> float:
        def resampled(result: Result) -> float:
            rounds = rng.choices(result.round_seconds, k=result.rounds)
            return result.images_per_round / statistics.median(rounds)

        return resampled(self.result) / resampled(self.reference)


def interval(statistic: Callable[[random.Random], float]) -> tuple[float, float]:
    """The bootstrap interval of a statistic, given as one draw from resampled rounds."""
    rng = random.Random(0)
    draws = sorted(statistic(rng) for _ in range(DRAWS))
    tail = int(DRAWS * (1 - LEVEL) / 2)
    return draws[tail], draws[-tail - 1]


def median_interval(values: list[float]) -> tuple[float, float] | None:
    """The bootstrap interval of the median of per-pair values; None below MIN_ROUNDS."""
    if len(values) < MIN_ROUNDS:
        return None
    return interval(lambda rng: statistics.median(rng.choices(values, k=len(values))))
