"""``--cnnbench-plot``: speedup against the number of devices, per wrapper, now and at the baseline
(or the history's protected level), with the compute-bound speedup above it (communication free):
the gap between them is the sync."""

from __future__ import annotations

from pathlib import Path

from cnnbench.report.files import save_png
from cnnbench.report.judgement import Report


def plot(report: Report, path: Path) -> None:
    from matplotlib.figure import Figure  # an optional extra: imported only when asked for

    configs = sorted(report.run.configs.values(), key=lambda c: c.name)
    figure = Figure(figsize=(5.5 * len(configs), 4.5), layout="constrained")
    for axes, config in zip(figure.subplots(1, len(configs), squeeze=False)[0], configs, strict=True):
        results = list(config.results.values())
        most = max(result.device_count for result in results)
        axes.plot([1, most], [1, most], ":", color="gray", label="ideal")
        axes.plot([1], [1], "k*", markersize=10, label="single device (the reference)")
        for wrapper in sorted({r.wrapper for r in results if not r.is_reference}):
            points = sorted(
                (
                    (result.device_count, stats, report.verdicts.get(result.name))
                    for result in results
                    if result.wrapper == wrapper and (stats := config.speedup_stats(result)) is not None
                ),
                key=lambda point: point[0],  # by device count alone: verdicts do not compare
            )
            if not points:
                continue
            x, y = [p[0] for p in points], [p[1].speedup for p in points]
            low = [p[1].speedup - (p[1].interval or (p[1].speedup,) * 2)[0] for p in points]
            high = [(p[1].interval or (p[1].speedup,) * 2)[1] - p[1].speedup for p in points]
            line = axes.errorbar(x, y, yerr=[low, high], marker="o", capsize=3, label=f"{wrapper} now (95% CI)")
            color = line.lines[0].get_color()
            old = [(p[0], p[2].baseline) for p in points if p[2] is not None and p[2].baseline is not None]
            if old:
                against = "baseline" if report.history is None else "protected level"
                axes.plot(*zip(*old, strict=True), "s--", color=color, alpha=0.6, label=f"{wrapper} {against}")
            bound = sorted((r.device_count, r.split.compute_bound) for r in results if r.wrapper == wrapper and r.split)
            if bound:
                axes.plot(*zip(*bound, strict=True), "^:", color=color, alpha=0.8, label=f"{wrapper} compute-bound")
        axes.set(title=config.name, xlabel="devices", ylabel="speedup over one device", xticks=range(1, most + 1))
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(f"cnnbench on {report.hardware}")
    save_png(figure, path)
