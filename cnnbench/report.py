"""What people read: the terminal summary and the Markdown report, from one set of tables."""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cnnbench.compare import Verdict
from cnnbench.results import Results

WORDS = (0, 1, 9)  # columns of names (wrapper, devices, verdict), left-aligned; numbers right-aligned


@dataclass(frozen=True)
class Report:
    results: Results
    verdicts: dict[str, Verdict]  # by test name
    environment: dict
    hardware: str
    compared: bool  # --benchmark-compare was given
    baseline: str | None = None  # the compared file
    storage: str | None = None
    wanted: str | None = None  # the run --benchmark-compare named, if it named one
    changes: list[str] = field(default_factory=list)  # environment, baseline -> now
    gate: str | None = None  # the thresholds, for people
    notes: list[str] = field(default_factory=list)


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _range(values, fmt: str) -> str:
    return "" if values is None else f"{values[0]:{fmt}}..{values[1]:{fmt}}"


def tables(report: Report) -> dict[str, list[tuple[str, ...]]]:
    """Per model config: a header row, then one row per result."""
    judged = report.compared or report.gate is not None
    header = ("wrapper", "devices", "images/s", "speedup", "95% CI", "efficiency")
    if judged:
        header += ("baseline", "change", "95% CI", "verdict")
    out: dict[str, list[tuple[str, ...]]] = {}
    for name, info in report.results.by_name.items():
        row = (
            info["wrapper"],
            info["device_set"],
            f"{info['images_per_second']:.1f}",
            _times(info["speedup"]),
            _range(info["speedup_ci"], ".2f"),
            "-" if info["efficiency"] is None else f"{info['efficiency']:.0%}",
        )
        if judged:
            verdict = report.verdicts.get(name)
            if verdict is None:
                row += ("", "", "", "")
            else:
                change = "" if verdict.change is None else f"{verdict.change:+.0%}"
                row += (_times(verdict.baseline), change, _range(verdict.change_ci, "+.0%"), verdict.verdict)
        out.setdefault(info["model_config"], [header]).append(row)
    return out


def _context(report: Report) -> list[str]:
    lines = []
    if report.compared:
        if report.baseline:
            lines.append(f"baseline: {report.baseline}")
        elif report.wanted:
            lines.append(f"baseline: nothing in {report.storage} matches {report.wanted!r}, so no speedup is gated")
        else:
            lines.append(
                f"baseline: none yet for {report.hardware} in {report.storage}: nothing to compare with, "
                "so no speedup is gated; save one with --benchmark-save=NAME"
            )
    if report.gate:
        lines.append(f"gate: {report.gate}")
    if report.baseline:
        lines += [f"environment changed: {c}" for c in report.changes] or ["environment: unchanged since the baseline"]
    env = report.environment
    libraries = [f"torch {env['torch']}"]
    if env["gpus"]:
        libraries += [f"CUDA {env['cuda']}", f"cuDNN {env['cudnn']}", f"NCCL {env['nccl']}", f"driver {env['driver']}"]
    return [*lines, f"machine: {report.hardware}; {', '.join(libraries)}", *report.notes]


def text(report: Report) -> list[str]:
    """The terminal summary: aligned tables, names left and numbers right, then the context."""
    lines = []
    for config, rows in tables(report).items():
        lines.append(config)
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            cells = [c.ljust(w) if i in WORDS else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
            lines.append(("  " + "  ".join(cells)).rstrip())
    return lines + _context(report)


def markdown(report: Report) -> str:
    """A report fit for a CI job summary."""
    failed = [(v.name.partition("::")[2], f) for v in report.verdicts.values() for f in v.failures]
    lines = ["# cnnbench: multi-device speedup", ""]
    if failed:
        lines += [f"**Failed**: {len(failed)} check(s)", ""] + [f"- `{name}`: {why}" for name, why in failed]
    else:
        lines.append(
            "**Passed**" if report.gate else "No gate was set (`--cnnbench-speedup-fail`, `--cnnbench-min-efficiency`)."
        )
    lines.append("")
    for config, rows in tables(report).items():
        lines += [f"## {config}", ""]
        lines.append("| " + " | ".join(rows[0]) + " |")
        lines.append("|" + "|".join("---" if i in WORDS else "---:" for i in range(len(rows[0]))) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
        lines.append("")
    lines += ["## Run", ""] + [f"- {line}" for line in _context(report)]
    return "\n".join(lines) + "\n"


def _umask() -> int:
    """The process umask. Reading it means setting it: 077 for that instant, so a file made meanwhile is private."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the whole new one, never a part.

    The file gets the mode ``open(path, "w")`` would give it, the old file's or 0666 less the umask,
    not the owner-only 0600 of the temporary file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def profile_note(profile: str) -> str | None:
    if profile == "quick":
        return (
            "note: the quick profile (1/4-width GoogLeNet at batch 32) is a CPU-sized proxy that "
            "exercises the DDP machinery, not the reference workload; its speedups are not GPU speedups"
        )
    return None
