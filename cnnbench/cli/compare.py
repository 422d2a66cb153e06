"""``cnnbench compare OLD NEW``: judge a saved run against another, as the plugin judges a run
against its ``--benchmark-compare`` baseline."""

from __future__ import annotations

import argparse

from cnnbench.cli.common import (
    UsageError,
    find,
    hardware_of,
    help_text,
    parsed,
    read,
    show,
    storage_options,
)
from cnnbench.settings.gate import Gate, baseline_gates
from cnnbench.settings.options import OPTION

NAME, SUMMARY = "compare", "judge a saved run against another"
DESCRIPTION = """\
Judge NEW against OLD as the plugin judges a run against its --benchmark-compare baseline: the
speedup table, verdicts, environment diff and gate, the same figures as the plugin's summary.
OLD and NEW are file paths, or run numbers and name globs in --storage, as --benchmark-compare
takes them (the newest run a glob matches). Runs of two hardware classes are refused unless
--any-hardware is given.
"""
EXAMPLES = """examples:
  # a regression, from the saved runs in tests/data: exits 1
  cnnbench compare tests/data/paired_idle.json tests/data/paired_straggler.json --speedup-fail=20%

  # the newest run saved as main against the newest run of all, with a report for CI
  cnnbench compare '*_main' '*' --speedup-fail=10% --min-efficiency=0.7 --report=scaling.md

  # run numbers in another storage folder, one hardware class of several
  cnnbench compare 0003 0007 --storage=/var/lib/cnnbench --hardware=cuda-3xNVIDIA_H200 --plot=scaling.png
"""


def add_arguments(compare: argparse.ArgumentParser) -> None:
    compare.add_argument("old", metavar="OLD", help="the baseline: a file, a run number (0003) or a name glob (*_main)")
    compare.add_argument("new", metavar="NEW", help="the run to judge, named the same ways")
    storage_options(compare, "where OLD and NEW are looked for when they are not files")
    for gate in baseline_gates():  # every gate the plugin judges against one baseline, parsed by its parser
        option = OPTION[gate.name.replace("_", "-")]
        compare.add_argument(
            f"--{option.name}",
            dest=gate.name,
            type=parsed(option),
            metavar=option.metavar,
            help=help_text(f"{option.help}; the plugin's {option.flag}, with OLD as the baseline"),
        )
    anyway = OPTION["compare-any-hardware"]
    compare.add_argument(
        "--any-hardware", action="store_true", help=f"compare runs of two hardware classes (the plugin's {anyway.flag})"
    )
    for name in ("report", "plot", "verdict-json"):
        option = OPTION[name]
        compare.add_argument(f"--{name}", type=parsed(option), metavar="PATH", help=help_text(option.help))


def run(args: argparse.Namespace) -> int:
    new_path, old_path = find(args.new, "NEW", args), find(args.old, "OLD", args)
    new, old = read(new_path, "NEW"), read(old_path, "OLD")
    hardware = hardware_of(new, "NEW")
    if hardware is None:
        raise UsageError(f"NEW {new.source}: no machine_info.cnnbench, so not a run saved by cnnbench")
    theirs = None if args.any_hardware else hardware_of(old, "OLD", " (--any-hardware to compare anyway)")
    if theirs is not None and theirs != hardware:
        raise UsageError(
            f"OLD {old.source} comes from {theirs}, NEW {new.source} from {hardware}; speedups compare only "
            "within one hardware class (--any-hardware to compare anyway)"
        )
    from cnnbench.report.judgement import judge

    gate = Gate(**{gate.name: getattr(args, gate.name) for gate in baseline_gates()})
    report = judge(new.run, old, gate, new.environment, hardware, compared=True, storage=str(args.storage))
    return show(report, f"run: {new.source}", (args.report, args.plot, args.verdict_json))
