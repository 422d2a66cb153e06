"""The ``cnnbench`` command: judge saved runs without running anything (``compare``), show a
hardware class's saved runs over time (``history``), make a run the baseline its class compares
with next (``accept``), and serve a multi-node run as one of its other nodes (``join``).

It exits 0, 1 when the gate failed, or 4 on a usage error, said in one line on stderr, as pytest
does. The modules that read saved runs import torch, so each command imports them when it runs:
``--help`` and a bad option answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from cnnbench.cli import accept, compare, history, join
from cnnbench.cli.common import FORMATTER, USAGE_ERROR, Parser, UsageError

DESCRIPTION = """\
Judge saved cnnbench runs without running anything, show a hardware class's runs over time, make
a run the baseline its class compares with next, and take part in a multi-node run as one of its
other nodes.
Saved runs are pytest-benchmark files: --benchmark-save/--benchmark-autosave keep them under
.benchmarks/<hardware class>/, --benchmark-json writes one anywhere.
Exit status: 0; 1 when the gate failed; 4 on a usage error (one line on stderr).
"""
EXAMPLES = """examples:
  cnnbench compare 0003 0004 --speedup-fail=20%
  cnnbench history --plot history.png
  cnnbench accept .benchmarks/cuda-3xNVIDIA_H200/rejected/20261205_101500_main.json
  cnnbench history --gate=10%
  cnnbench join 10.0.0.1:29400
  cnnbench COMMAND --help
"""
COMMANDS = (compare, history, accept, join)  # each: NAME, SUMMARY, DESCRIPTION, EXAMPLES, add_arguments, run


def make_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="cnnbench", description=DESCRIPTION, epilog=EXAMPLES, formatter_class=FORMATTER)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = commands.add_parser(
            command.NAME,
            help=command.SUMMARY,
            description=command.DESCRIPTION,
            epilog=command.EXAMPLES,
            formatter_class=FORMATTER,
        )
        sub.set_defaults(command=command.run)
        command.add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = make_parser().parse_args(argv)
        if args.plot:
            from cnnbench.report.files import matplotlib_missing  # with the report, and torch

            if missing := matplotlib_missing("--plot"):
                raise UsageError(missing.removeprefix("cnnbench: "))
        return args.command(args)
    except UsageError as error:
        print(f"cnnbench: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except BrokenPipeError:  # the reader went away (cnnbench history | head): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's docs' way: no error at exit
        return 0
