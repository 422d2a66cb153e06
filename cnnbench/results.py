"""Throughput, speedup and efficiency of the results of one run, kept in their extra_info."""

from __future__ import annotations

from cnnbench.cases import Case


def images_per_second(global_batch: int, steps: int, round_seconds: float) -> float:
    return global_batch * steps / round_seconds


def speedup(throughput: float, reference_throughput: float) -> float:
    """Strong scaling: the reference's round time over ours; weak: the throughput ratio (the same thing)."""
    return throughput / reference_throughput


def efficiency(speedup_: float, devices: int) -> float:
    return speedup_ / devices


class Results:
    """Each model config's results; the ``single`` one is the speedup reference for the rest.

    Results may arrive in any order: every ``add`` recomputes its model config's speedups, in the
    ``extra_info`` dicts that pytest-benchmark saves.
    """

    def __init__(self) -> None:
        self.by_config: dict[str, list[dict]] = {}
        self.device_names: dict[str, str] = {}

    def add(self, case: Case, median_seconds: float, extra_info: dict) -> None:
        extra_info["images_per_second"] = images_per_second(case.global_batch, case.steps, median_seconds)
        infos = self.by_config.setdefault(case.model_config, [])
        infos.append(extra_info)
        reference = next((i for i in infos if i["wrapper"] == "single"), None)
        for info in infos:
            if reference is None:
                info["speedup"] = info["efficiency"] = None
            else:
                info["speedup"] = speedup(info["images_per_second"], reference["images_per_second"])
                info["efficiency"] = efficiency(info["speedup"], info["world_size"])
