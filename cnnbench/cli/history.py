"""``cnnbench history``: a hardware class's saved runs over time, as a table and a plot."""

from __future__ import annotations

import argparse

from cnnbench.cli.common import WIDTH, UsageError, hardware_classes, parsed, read_all, storage_options
from cnnbench.settings.options import OPTION
from cnnbench.storage.folders import query, rejected

NAME, SUMMARY = "history", "a hardware class's saved runs over time"
DESCRIPTION = """\
Every saved run of one hardware class, oldest first: each configuration's speedup with its 95%
interval, the reference's images per second, and each change of environment (driver, CUDA,
NCCL, torch, GPUs, topology) since the run before, numbered in the env column. Runs kept out of
the baselines (rejected/) are left out unless --rejected is given, then shown apart.
"""
EXAMPLES = """examples:
  cnnbench history
  cnnbench history --hardware=cpu-2xAMD_EPYC --rejected --plot=history.png
  cnnbench history --storage=/var/lib/cnnbench
"""


def add_arguments(history: argparse.ArgumentParser) -> None:
    storage_options(history, "the saved runs")
    history.add_argument("--rejected", action="store_true", help="show the rejected runs too, apart")
    history.add_argument(
        "--plot",
        type=parsed(OPTION["plot"]),
        metavar="PATH",
        help="write a PNG of the history here: speedups with their intervals and the reference's throughput "
        "over time, environment changes marked; needs matplotlib (default: none)",
    )


def run(args: argparse.Namespace) -> int:
    from cnnbench.report.history import History, text
    from cnnbench.report.history import plot as draw

    storage, searched = args.storage, hardware_classes(args)
    if not searched:
        raise UsageError(f"--storage {storage}: no saved runs there (save some with --benchmark-save=NAME)")
    if len(searched) > 1:
        counts = ", ".join(f"{name} ({len(query(storage / name, '*'))} runs)" for name in searched)
        raise UsageError(f"{storage} holds {len(searched)} hardware classes: {counts}; choose one with --hardware")
    (hardware,) = searched
    kept, apart = query(storage / hardware, "*"), rejected(storage, hardware)
    runs = read_all([*kept, *apart] if args.rejected else kept)
    history = History.of(hardware, [runs[p] for p in kept if p in runs], [runs[p] for p in apart if p in runs])
    print(*text(history, storage, WIDTH), sep="\n")
    if apart and not args.rejected:
        print(f"({len(apart)} rejected run(s) left out: --rejected shows them)")
    if args.plot:
        try:
            draw(history, args.plot)
        except OSError as error:
            raise UsageError(f"could not write {error.filename}: {error.strerror}") from None
        print(f"cnnbench: plot written to {args.plot}")
    return 0
