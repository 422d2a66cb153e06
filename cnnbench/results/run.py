"""A run's results, typed, and their speedups with bootstrap intervals.

Every result but the reference's own carries the rounds of its reference (``single`` on the first
device of its set), run alternately with its own while both worker groups stayed up: each pair's throughput
ratio is one speedup sample, so whatever slows the whole machine for a while slows both sides of
it. The speedup is the median pair ratio; its interval, the 2.5th to 97.5th percentile of that
median over 2000 bootstrap draws of the pairs (seeded: the same data always give the same
interval). A result saved before pairing is measured against its model config's reference result
in the same run, each run's rounds resampled on their own.

Where the time of a multi-device round goes comes from the same pairs: the local step (the
reference wrapper alone on one device of the set, at that device's share of the batch) runs
beside the reference before each round, so each pair also gives what the set could reach if
communication were free, and the time the step spent beyond it.

With real data, each round's batches came through the loader, and just before it the same steps
ran on one batch held on the device: each pair gives the share of the step time the input
pipeline adds, (T_loader - T_held) / T_loader.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from cnnbench.results.stats import PairedSpeedup, Speedup, UnpairedSpeedup, interval, median_interval
from cnnbench.settings.gate import MIN_ROUNDS


class Unusable(ValueError):
    """A saved result that cannot be read or judged; the message says why."""


@dataclass(frozen=True)
class LocalRounds:
    """The local step on one device of a set, one round before each of the set's rounds."""

    device: str  # e.g. cpu:0
    alike: int  # how many devices of the set it stands for: those that report the same name
    images_per_round: int
    seconds: tuple[float, ...]


@dataclass(frozen=True)
class AllReduce:
    """All-reduce of one gradient bucket's size over a group's ranks: the slowest rank's mean."""

    bytes: int
    seconds: float
    ranks: int

    @property
    def algbw(self) -> float:
        """GB/s, as nccl-tests reports it: bytes / time."""
        return self.bytes / self.seconds / 1e9

    @property
    def busbw(self) -> float:
        """GB/s that a link must carry for the ring algorithm, comparable across rank counts."""
        return self.algbw * 2 * (self.ranks - 1) / self.ranks


@dataclass(frozen=True)
class Split:
    """Where a round of a result went, per pair: the step alone on its devices against the rest."""

    compute_bound: float  # the speedup the set could reach if communication were free
    compute_bound_interval: tuple[float, float] | None
    exposed_sync: float  # seconds per step beyond the slowest local step: sync not hidden, waits, the wrapper's work
    exposed_sync_interval: tuple[float, float] | None
    sync_share: float  # of the step
    ideal_capacity: float | None  # devices that differ: the sum of their throughputs over the reference's


@dataclass(frozen=True)
class Pipeline:
    """Real data through the loader against the same steps on one batch held on the device."""

    held_images_per_second: float  # at the median held round: the step alone
    input_share: float  # of the step time, median over the pairs: what the loader adds
    input_share_interval: tuple[float, float] | None
    epoch_seconds: float | None  # the whole training set; None without its size
    epoch_timed: bool  # timed whole epochs (the median); else derived from the median round


@dataclass(frozen=True)
class Result:
    """One benchmark's measurement: what ran, its round times and its paired reference rounds."""

    name: str  # the test's full name: runs match by it
    model_config: str
    wrapper: str
    device_set: str
    device_count: int
    is_reference: bool  # the wrapper that speedups are measured against
    images_per_round: int
    round_seconds: tuple[float, ...]
    reference_seconds: tuple[float, ...] = ()  # one per round, run just before it; () when unpaired
    reference_images_per_round: int = 0
    workload: dict[str, str] = field(default_factory=dict)  # what must match to compare: steps, split, threads
    device_names: tuple[str, ...] = ()
    steps_per_round: int = 1
    local: tuple[LocalRounds, ...] = ()  # one per distinct device of the set, paired like the reference
    all_reduce: tuple[AllReduce, ...] = ()  # per gradient bucket, after the timed rounds (ddp)
    held_seconds: tuple[float, ...] = ()  # real data: the steps on a held batch, one before each round
    train_images: int = 0  # real data: images in the training set, for the epoch's time
    epoch_seconds: tuple[float, ...] = ()  # whole epochs, each timed on its own (--cnnbench-epochs)
    compile_seconds: float | None = None  # the first compiled step, before the warmup (slowest rank); None: eager
    compiled_graphs: int | None = None  # graphs torch.compile captured (the most on any rank)

    @property
    def rounds(self) -> int:
        return len(self.round_seconds)

    @property
    def paired(self) -> bool:
        return bool(self.reference_seconds)

    @property
    def images_per_second(self) -> float:
        """At the median round time."""
        return self.images_per_round / statistics.median(self.round_seconds)

    def check(self) -> None:
        """Raise Unusable if these round times cannot give a speedup."""
        if not self.round_seconds:
            raise Unusable("no round times")
        for label, values in (("round", self.round_seconds), ("reference round", self.reference_seconds)):
            bad = [v for v in values if not (math.isfinite(v) and v > 0)]
            if bad:
                raise Unusable(f"{label} time {bad[0]!r} is not a positive number")
        if self.paired and len(self.reference_seconds) != self.rounds:
            raise Unusable(f"{self.rounds} rounds but {len(self.reference_seconds)} reference rounds")
        if self.images_per_round <= 0 or (self.paired and self.reference_images_per_round <= 0):
            raise Unusable("no images per round")
        for local in self.local:
            if len(local.seconds) != self.rounds or not all(math.isfinite(v) and v > 0 for v in local.seconds):
                raise Unusable(f"the local step on {local.device} has unusable round times")
            if local.alike < 1 or local.images_per_round <= 0:
                raise Unusable(f"the local step on {local.device} stands for no device or no images")
        held, epochs = self.held_seconds, self.epoch_seconds
        if (held and len(held) != self.rounds) or not all(math.isfinite(v) and v > 0 for v in held + epochs):
            raise Unusable("the held-batch rounds or the timed epochs are not positive numbers, one per round")
        if not all(b.bytes > 0 and math.isfinite(b.seconds) and b.seconds > 0 and b.ranks > 1 for b in self.all_reduce):
            raise Unusable("an all-reduce timing is not a positive number")
        if len({b.ranks for b in self.all_reduce}) > 1:
            raise Unusable("all-reduce timings over different numbers of ranks")

    @property
    def gradient(self) -> AllReduce | None:
        """Every bucket all-reduced one after another: the whole gradient with nothing overlapped."""
        if not self.all_reduce:
            return None
        buckets = self.all_reduce
        return AllReduce(sum(b.bytes for b in buckets), sum(b.seconds for b in buckets), buckets[0].ranks)

    @cached_property
    def pipeline(self) -> Pipeline | None:
        """The loader against the held batch, per pair, and an epoch's time; None without held rounds.
        An epoch is the timed epochs' median, or else the training set at the median round's pace."""
        if not self.held_seconds:
            return None
        pairs = zip(self.round_seconds, self.held_seconds, strict=True)
        share = [(loader - held) / loader for loader, held in pairs]
        if self.epoch_seconds:
            epoch = statistics.median(self.epoch_seconds)
        else:
            epoch = self.train_images / self.images_per_second if self.train_images else None
        return Pipeline(
            self.images_per_round / statistics.median(self.held_seconds),
            statistics.median(share),
            median_interval(share),
            epoch,
            bool(self.epoch_seconds),
        )

    @cached_property
    def split(self) -> Split | None:
        """Where the rounds went, from the pairs; None without a paired local step."""
        if not (self.paired and self.local):
            return None
        pairs = range(self.rounds)
        slowest = [max(local.seconds[i] for local in self.local) for i in pairs]
        reference = [self.reference_images_per_round / self.reference_seconds[i] for i in pairs]
        bound = [self.images_per_round / slowest[i] / reference[i] for i in pairs]
        exposed = [(self.round_seconds[i] - slowest[i]) / self.steps_per_round for i in pairs]
        share = [(self.round_seconds[i] - slowest[i]) / self.round_seconds[i] for i in pairs]
        capacity = None
        if len(self.local) > 1:
            throughputs = [sum(d.alike * d.images_per_round / d.seconds[i] for d in self.local) for i in pairs]
            capacity = statistics.median(t / r for t, r in zip(throughputs, reference, strict=True))
        return Split(
            statistics.median(bound),
            median_interval(bound),
            statistics.median(exposed),
            median_interval(exposed),
            statistics.median(share),
            capacity,
        )


@dataclass(frozen=True)
class SpeedupStats:
    """A result's speedup over its reference, as shown and saved."""

    speedup: float
    interval: tuple[float, float] | None  # None for the reference itself, or with too few rounds
    efficiency: float  # speedup / devices


@dataclass
class ModelConfig:
    """The results of one model config; its reference result serves results saved without pairs.

    Each result's stats are bootstrapped once and kept until a result is added.
    """

    name: str
    results: dict[str, Result] = field(default_factory=dict)
    _stats: dict[str, SpeedupStats | None] = field(default_factory=dict, repr=False)

    def add(self, result: Result) -> None:
        self.results[result.name] = result
        self._stats.clear()  # a new reference changes the unpaired results' speedups

    @property
    def reference(self) -> Result | None:
        return next((r for r in self.results.values() if r.is_reference), None)

    def speedup(self, result: Result) -> Speedup | None:
        """None for the reference itself, and for an unpaired result whose run had no reference."""
        if result.paired:
            return PairedSpeedup.of(result)
        reference = self.reference
        if result.is_reference or reference is None:
            return None
        return UnpairedSpeedup(result, reference)

    def speedup_stats(self, result: Result) -> SpeedupStats | None:
        if result.name not in self._stats:
            self._stats[result.name] = self._bootstrap(result)
        return self._stats[result.name]

    def _bootstrap(self, result: Result) -> SpeedupStats | None:
        if result.is_reference:
            return SpeedupStats(1.0, None, 1.0 / result.device_count)
        speedup = self.speedup(result)
        if speedup is None:
            return None
        bounds = interval(speedup.draw) if speedup.samples >= MIN_ROUNDS else None
        return SpeedupStats(speedup.value, bounds, speedup.value / result.device_count)


class Run:
    """A run's results by test name, grouped by model config: this run's as they arrive, or a saved one."""

    def __init__(self, results: Iterable[Result] = ()) -> None:
        self.configs: dict[str, ModelConfig] = {}
        for result in results:
            self.add(result)

    def add(self, result: Result) -> None:
        self.configs.setdefault(result.model_config, ModelConfig(result.model_config)).add(result)

    @property
    def results(self) -> dict[str, Result]:
        return {name: r for config in self.configs.values() for name, r in config.results.items()}

    def speedup(self, result: Result) -> Speedup | None:
        return self.configs[result.model_config].speedup(result)

    def speedup_stats(self, result: Result) -> SpeedupStats | None:
        return self.configs[result.model_config].speedup_stats(result)
