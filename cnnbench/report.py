"""The terminal summary: speedup tables per model config and one line on the machine."""

from __future__ import annotations

import torch

from cnnbench.config import Settings
from cnnbench.devices import usable_cores
from cnnbench.results import Results


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def speedup_tables(results: Results) -> list[str]:
    lines = []
    for config, infos in results.by_config.items():
        lines.append(config)
        rows = [("wrapper", "devices", "images/s", "speedup", "efficiency")]
        for info in infos:
            rows.append(
                (
                    info["wrapper"],
                    info["device_set"],
                    f"{info['images_per_second']:.1f}",
                    _times(info["speedup"]),
                    _percent(info["efficiency"]),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:  # names left-aligned, numbers right-aligned
            cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
            lines.append("  " + "  ".join(cells))
    return lines


def machine_line(settings: Settings, results: Results) -> str:
    parts = [f"torch {torch.__version__}"]
    if any(s.kind == "cuda" for s in settings.devices):
        nccl = ".".join(map(str, torch.cuda.nccl.version())) if torch.distributed.is_nccl_available() else "none"
        parts += [f"CUDA {torch.version.cuda}", f"cuDNN {torch.backends.cudnn.version()}", f"NCCL {nccl}"]
        gpus = sorted({name for device, name in results.device_names.items() if device.startswith("cuda")})
        parts.append(f"GPUs: {', '.join(gpus) or 'none ran'}")
    if any(s.kind == "cpu" for s in settings.devices):
        parts.append(f"CPU: {len(usable_cores())} usable cores, {settings.threads_per_device} thread(s) per rank")
    return "machine: " + "; ".join(parts)


def profile_note(settings: Settings) -> str | None:
    if settings.profile == "quick":
        return (
            "note: the quick profile (1/4-width GoogLeNet at batch 32) is a CPU-sized proxy that "
            "exercises the DDP machinery, not the reference workload; its speedups are not GPU speedups"
        )
    return None


def summary(settings: Settings, results: Results) -> list[str]:
    if not results.by_config:
        return []
    note = profile_note(settings)
    return speedup_tables(results) + [machine_line(settings, results)] + ([note] if note else [])
