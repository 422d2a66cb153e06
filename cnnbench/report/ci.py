"""What CI reads of a judged run: the verdict file (``--cnnbench-verdict-json``, ``--verdict-json``)
and, under GitHub Actions, one ``::error`` annotation per failed check.

The verdict file's keys are stable: every key is always present, null where it does not apply, and
a change of meaning gets a new ``schema`` number. docs/history.md describes each key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cnnbench.report.files import write_atomically
from cnnbench.report.judgement import Report
from cnnbench.results.verdicts import Outcome, Verdict, short_name

SCHEMA = 1


def _pair(bounds: tuple[float, float] | None) -> list[float] | None:
    return list(bounds) if bounds else None


def _result(report: Report, verdict: Verdict) -> dict[str, Any]:
    result, stats = verdict.result, verdict.stats
    level = report.levels.get(result.name)
    return {
        "test": result.name,
        "model_config": result.model_config,
        "wrapper": result.wrapper,
        "devices": result.device_set,
        "speedup": stats.speedup,
        "speedup_ci": _pair(stats.interval),
        "efficiency": stats.efficiency,
        "baseline": verdict.baseline if report.history is None else None,
        "protected_level": None if level is None else {"speedup": level.speedup, "runs": list(level.runs)},
        "change": verdict.change,
        "change_ci": _pair(verdict.change_ci),
        "verdict": verdict.verdict,
        "judged": verdict.judged,
        "failures": list(verdict.failures),
    }


def document(report: Report) -> dict[str, Any]:
    """The verdict file's content (schema 1)."""
    outcome = report.outcome
    history = report.history
    return {
        "schema": SCHEMA,
        "outcome": {
            "failed": outcome.failed,
            "line": outcome.line,
            "failures": [{"test": name, "why": why} for name, why in outcome.failures],
        },
        "gate": asdict(report.gate),
        "hardware": report.hardware,
        "baseline": report.baseline,
        "history": None if history is None else {"runs": [past.label for past in history]},
        "results": [_result(report, verdict) for verdict in report.verdicts.values()],
    }


def write_verdict(report: Report, path: Path) -> None:
    """The verdict file, whole or not at all."""
    write_atomically(path, (json.dumps(document(report), indent=2) + "\n").encode())


def on_github(environ: Mapping[str, str] = os.environ) -> bool:
    """Running under GitHub Actions, which turns ``::error`` lines on stdout into annotations."""
    return environ.get("GITHUB_ACTIONS") == "true"


def _escaped(text: str, value: bool = False) -> str:
    """GitHub's workflow-command escaping: of a message, or (``value``) of a property such as the title."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if value else text


def annotations(outcome: Outcome) -> list[str]:
    """One ``::error`` line per failed check; one for the whole gate where it failed without one."""
    lines = [
        f"::error title={_escaped(f'cnnbench: {short_name(name)}', value=True)}::{_escaped(why)}"
        for name, why in outcome.failures
    ]
    if outcome.failed and not lines:
        lines.append(f"::error title=cnnbench::{_escaped(outcome.line.removeprefix('cnnbench: '))}")
    return lines
