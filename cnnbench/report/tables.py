"""The tables a judged run is shown in, terminal and Markdown alike: speedups and verdicts, where the
time went, the input pipeline, and the all-reduce buckets."""

from __future__ import annotations

from cnnbench.report.judgement import Report
from cnnbench.report.table import Column, Table

NAMES = (Column("wrapper", words=True), Column("devices", words=True))  # every table's key columns
SPEEDUP = (*NAMES, Column("images/s"), Column("speedup"), Column("95% CI"), Column("efficiency"))
VERDICT = (Column("baseline"), Column("change"), Column("95% CI"), Column("verdict", words=True))
SPLIT = (
    *NAMES,
    *map(Column, ("compute-bound", "95% CI", "exposed sync", "95% CI", "of step", "of bound")),
)
MIXED = (Column("ideal capacity"), Column("of capacity"))
PIPELINE = (
    *NAMES,
    *map(Column, ("loader img/s", "held img/s", "input share", "95% CI", "epoch")),
    Column("epoch from", words=True),
)
BUCKETS = (*NAMES, *map(Column, ("bytes", "time", "algbw", "busbw")))


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _range(values, fmt: str) -> str:
    return "" if values is None else f"{values[0]:{fmt}}..{values[1]:{fmt}}"


def speedup_tables(report: Report) -> dict[str, Table]:
    """Per model config, one row per result: throughput, speedup, and the verdict where one is shown."""
    show_verdicts = report.compared or report.gate.set
    against = VERDICT if report.history is None else (Column("level"), *VERDICT[1:])  # the history's protected level
    out: dict[str, Table] = {}
    for config in report.run.configs.values():
        table = out[config.name] = Table(SPEEDUP + against * show_verdicts)
        for result in config.results.values():
            stats = config.speedup_stats(result)
            row = (
                result.wrapper,
                result.device_set,
                f"{result.images_per_second:.1f}",
                _times(stats and stats.speedup),
                _range(stats and stats.interval, ".2f"),
                "-" if stats is None else f"{stats.efficiency:.0%}",
            )
            if show_verdicts:
                verdict = report.verdicts.get(result.name)
                if verdict is None:
                    row += ("", "", "", "")
                else:
                    change = "" if verdict.change is None else f"{verdict.change:+.0%}"
                    words = verdict.verdict + (" (baseline unpaired)" if verdict.unpaired else "")
                    row += (_times(verdict.baseline), change, _range(verdict.change_ci, "+.0%"), words)
            table.rows.append(row)
    return out


def split_tables(report: Report) -> dict[str, Table]:
    """Per model config, where each result's time went: the compute-bound speedup (the local step
    on its devices against the reference: communication free), the sync exposed beyond it per
    step and its share of the step, the speedup's share of the compute-bound one (the ideal of an
    even split), for a mixed set the ideal capacity and the speedup's share of it, and the whole
    gradient's all-reduce bus bandwidth."""
    mixed = any(r.split and r.split.ideal_capacity is not None for r in report.run.results.values())
    columns = SPLIT + MIXED * mixed + (Column("busbw"),)
    out: dict[str, Table] = {}
    for config in report.run.configs.values():
        table = Table(columns)
        for result in config.results.values():
            split, gradient, stats = result.split, result.gradient, config.speedup_stats(result)
            if split is None or stats is None:
                continue
            ms = 1000
            exposed_ci = split.exposed_sync_interval and tuple(v * ms for v in split.exposed_sync_interval)
            row = (
                result.wrapper,
                result.device_set,
                _times(split.compute_bound),
                _range(split.compute_bound_interval, ".2f"),
                f"{split.exposed_sync * ms:.1f} ms",
                _range(exposed_ci, ".1f"),
                f"{split.sync_share:.0%}",
                f"{stats.speedup / split.compute_bound:.0%}",
            )
            if mixed:
                capacity = split.ideal_capacity
                row += ("-", "-") if capacity is None else (_times(capacity), f"{stats.speedup / capacity:.0%}")
            table.rows.append((*row, "-" if gradient is None else f"{gradient.busbw:.2f} GB/s"))
        if table.rows:
            out[config.name] = table
    return out


def pipeline_tables(report: Report) -> dict[str, Table]:
    """Per model config with real data: each result's images per second through the loader against
    the same steps on one batch held on the device, the share of the step time the loader adds, and
    the time of an epoch (timed, or the training set at the median round's pace)."""
    out: dict[str, Table] = {}
    for config in report.run.configs.values():
        table = Table(PIPELINE)
        for result in config.results.values():
            if (pipeline := result.pipeline) is None:
                continue
            table.rows.append(
                (
                    result.wrapper,
                    result.device_set,
                    f"{result.images_per_second:.1f}",
                    f"{pipeline.held_images_per_second:.1f}",
                    f"{pipeline.input_share:.0%}",
                    _range(pipeline.input_share_interval, ".0%"),
                    _duration(pipeline.epoch_seconds),
                    f"{len(result.epoch_seconds)} timed" if pipeline.epoch_timed else "median round",
                )
            )
        if table.rows:
            out[config.name] = table
    return out


def _duration(seconds: float | None) -> str:
    """``5:25`` from a minute on, as the published epoch times read; seconds below."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


def bandwidth_table(report: Report) -> Table | None:
    """Every timed all-reduce bucket: nccl-tests' algbw and busbw; None where none was timed."""
    table = Table(BUCKETS)
    for result in report.run.results.values():
        for bucket in result.all_reduce:
            table.rows.append(
                (
                    result.wrapper,
                    result.device_set,
                    f"{bucket.bytes}",
                    f"{bucket.seconds * 1e3:.3f} ms",
                    f"{bucket.algbw:.2f} GB/s",
                    f"{bucket.busbw:.2f} GB/s",
                )
            )
    return table if table.rows else None
