"""A judged run rendered: the terminal summary, the Markdown report, and the files asked for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cnnbench.report.ci import write_verdict
from cnnbench.report.files import write_atomically
from cnnbench.report.judgement import Report, context
from cnnbench.report.plot import plot
from cnnbench.report.tables import bandwidth_table, pipeline_tables, speedup_tables, split_tables
from cnnbench.results.verdicts import short_name
from cnnbench.settings.gate import gate_flags


def text(report: Report, width: int | None = None) -> list[str]:
    """The terminal summary: aligned tables, names left and numbers right (fitted to ``width``, if
    given), the context, then the failed checks and the gate's result, where the eye lands."""
    lines = []
    splits, pipelines = split_tables(report), pipeline_tables(report)
    for config, table in speedup_tables(report).items():
        lines += [config, *table.lines(width)]
        if config in splits:
            lines += ["  where the time went (per step; local step alone on its devices vs the rest):"]
            lines += splits[config].lines(width)
        if config in pipelines:
            lines += ["  input pipeline (the loader vs the same steps on one batch held on the device):"]
            lines += pipelines[config].lines(width)
    failed = [f"FAILED {short_name(name)}: {why}" for name, why in report.outcome.failures]
    return lines + context(report) + failed + [report.outcome.line]


def markdown(report: Report) -> str:
    """A report fit for a CI job summary."""
    failed = [(short_name(name), why) for name, why in report.outcome.failures]
    lines = ["# cnnbench: multi-device speedup", ""]
    if report.outcome.failed:
        lines += [f"**Failed**: {len(failed) or 1} check(s)", ""] + [f"- `{name}`: {why}" for name, why in failed]
        if not failed:
            lines.append(f"- {report.outcome.line.removeprefix('cnnbench: ')}")
    else:
        lines.append(
            "**Passed**" if report.gate.set else f"No gate was set ({', '.join(f'`{flag}`' for flag in gate_flags())})."
        )
    lines.append("")
    splits, pipelines = split_tables(report), pipeline_tables(report)
    for config, table in speedup_tables(report).items():
        lines += [f"## {config}", "", *table.markdown()]
        if config in splits:
            lines += ["Where the time went, per step (the local step alone on its devices, against the rest):", ""]
            lines += splits[config].markdown()
        if config in pipelines:
            lines += [
                "The input pipeline: the rounds through the loader against the same steps on one batch held "
                "on the device, the share of the step time the loader adds, and an epoch of the training set:",
                "",
            ]
            lines += pipelines[config].markdown()
    if buckets := bandwidth_table(report):
        lines += ["## All-reduce at DDP's bucket sizes", "", *buckets.markdown()]
    lines += ["## Run", ""] + [f"- {line}" for line in [*context(report), report.outcome.line]]
    return "\n".join(lines) + "\n"


def write_files(
    report: Report,
    markdown_path: Path | None,
    png_path: Path | None,
    say: Callable[[str], None],
    verdict_path: Path | None = None,
) -> None:
    """The Markdown report, the plot and the verdict file, where asked for, each whole or not at
    all; ``say`` is told what was written. An OSError says what could not be."""
    if verdict_path:
        write_verdict(report, verdict_path)
        say(f"cnnbench: verdicts written to {verdict_path}")
    if markdown_path:
        write_atomically(markdown_path, markdown(report).encode())
        say(f"cnnbench: report written to {markdown_path}")
    if png_path:
        plot(report, png_path)
        say(f"cnnbench: plot written to {png_path}")
