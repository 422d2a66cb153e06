"""Throughput, speedup and efficiency, with bootstrap intervals from the timed rounds.

A result is its benchmark's ``extra_info``: the case's sizes plus ``round_seconds``, the time of
every timed round. Statistics are medians over rounds; an interval is the 2.5th to 97.5th
percentile of the statistic over 2000 bootstrap draws, each resampling every run's rounds with
replacement (seeded, so the same data always gives the same verdict).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Iterable

DRAWS = 2000
LEVEL = 0.95

Throughput = Callable[[dict], float]  # a result's images per second, measured or resampled


def throughput(info: dict) -> float:
    """Images per second at the median round time."""
    return info["global_batch"] * info["steps_per_round"] / statistics.median(info["round_seconds"])


def interval(statistic: Callable[[Throughput], float]) -> tuple[float, float]:
    """The bootstrap interval of ``statistic``, a function of the results' throughputs."""
    rng = random.Random(0)

    def resampled(info: dict) -> float:
        rounds = info["round_seconds"]
        return throughput({**info, "round_seconds": rng.choices(rounds, k=len(rounds))})

    draws = sorted(statistic(resampled) for _ in range(DRAWS))
    tail = int(DRAWS * (1 - LEVEL) / 2)
    return draws[tail], draws[-tail - 1]


def speedup(info: dict, reference: dict) -> Callable[[Throughput], float]:
    """Strong scaling: the reference's round time over ours; weak: the throughput ratio (the same thing)."""
    return lambda tp: tp(info) / tp(reference)


def reference(results: Iterable[dict], model_config: str) -> dict | None:
    """The ``single`` result of a model config: what its speedups are measured against."""
    return next((r for r in results if r["model_config"] == model_config and r["wrapper"] == "single"), None)


def efficiency(speedup_: float, devices: int) -> float:
    return speedup_ / devices


class Results:
    """This run's results by test name; in each model config the ``single`` one is the reference.

    Results may arrive in any order: ``add`` computes the new result's speedup, or all of its model
    config's when the new result is the reference, in the ``extra_info`` dicts pytest-benchmark saves.
    """

    def __init__(self) -> None:
        self.by_name: dict[str, dict] = {}

    def add(self, name: str, round_seconds: list[float], info: dict) -> None:
        info["round_seconds"] = list(round_seconds)
        info["images_per_second"] = throughput(info)
        self.by_name[name] = info
        config = info["model_config"]
        single = reference(self.by_name.values(), config)
        # a new reference changes every speedup of its config; any other result only its own
        changed = [i for i in self.by_name.values() if i["model_config"] == config] if info is single else [info]
        for result in changed:
            if single is None:
                result["speedup"] = result["speedup_ci"] = result["efficiency"] = None
                continue
            ratio = speedup(result, single)
            result["speedup"] = ratio(throughput)
            result["speedup_ci"] = None if result is single else list(interval(ratio))
            result["efficiency"] = efficiency(result["speedup"], result["world_size"])
