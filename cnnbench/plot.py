"""``--cnnbench-plot``: speedup against the number of devices, per wrapper, now and at the baseline."""

from __future__ import annotations

import io
from pathlib import Path

from cnnbench.report import Report, write_atomically

MISSING = "cnnbench: --cnnbench-plot needs matplotlib; install it with: pip install 'cnnbench[plot]'"


def matplotlib_missing() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return True
    return False


def plot(report: Report, path: Path) -> None:
    from matplotlib.figure import Figure  # an optional extra: imported only when asked for

    configs = sorted({info["model_config"] for info in report.results.by_name.values()})
    figure = Figure(figsize=(5.5 * len(configs), 4.5), layout="constrained")
    for axes, config in zip(figure.subplots(1, len(configs), squeeze=False)[0], configs, strict=True):
        infos = {n: i for n, i in report.results.by_name.items() if i["model_config"] == config}
        most = max(info["world_size"] for info in infos.values())
        axes.plot([1, most], [1, most], ":", color="gray", label="ideal")
        axes.plot([1], [1], "k*", markersize=10, label="single (the reference)")
        for wrapper in sorted({info["wrapper"] for info in infos.values()} - {"single"}):
            points = sorted(
                (
                    (info["world_size"], info["speedup"], info["speedup_ci"], report.verdicts.get(name))
                    for name, info in infos.items()
                    if info["wrapper"] == wrapper and info["speedup"] is not None
                ),
                key=lambda point: point[0],  # by device count alone: verdicts do not compare
            )
            if not points:
                continue
            x, y = [p[0] for p in points], [p[1] for p in points]
            errors = [[p[1] - p[2][0] for p in points], [p[2][1] - p[1] for p in points]]
            line = axes.errorbar(x, y, yerr=errors, marker="o", capsize=3, label=f"{wrapper} now (95% CI)")
            old = [(p[0], p[3].baseline) for p in points if p[3] is not None and p[3].baseline is not None]
            if old:
                color = line.lines[0].get_color()
                axes.plot(*zip(*old, strict=True), "s--", color=color, alpha=0.6, label=f"{wrapper} baseline")
        axes.set(title=config, xlabel="devices", ylabel="speedup over single", xticks=range(1, most + 1))
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(f"cnnbench on {report.hardware}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    write_atomically(path, buffer.getvalue())
