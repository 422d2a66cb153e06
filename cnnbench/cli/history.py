"""``cnnbench history``: a hardware class's saved runs over time, as a table and a plot, with the
change points of each configuration's speedup; ``--gate`` judges the newest run against the
protected level of the runs before it, as ``--cnnbench-history-fail`` judges a run in pytest."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnbench.cli.common import (
    WIDTH,
    UsageError,
    find,
    hardware_classes,
    help_text,
    parsed,
    read_all,
    show,
    storage_options,
)
from cnnbench.settings.options import OPTION
from cnnbench.storage.folders import query, rejected

NAME, SUMMARY = "history", "a hardware class's saved runs over time, its change points and history gate"
DESCRIPTION = """\
Every saved run of one hardware class, oldest first: each configuration's speedup with its 95%
interval, the reference's images per second, and each change of environment (driver, CUDA,
NCCL, torch, GPUs, topology) since the run before, numbered in the env column. Runs kept out of
the baselines (rejected/) are left out unless --rejected is given, then shown apart.

Below each table, the change points of each configuration's speedup over the kept runs (levels of
at least 3 runs, each change with its size, Welch's p-value, its run and the environment change
there) and the protected level: the highest level that held since the last accepted run, which the
next run is judged against. --gate=PCT judges the newest kept run against the protected level of
the runs before it: exit 1 when a speedup is more than PCT below it, beyond noise. --accept=RUN
marks a kept run accepted: the protected level starts afresh from it (docs/history.md).
"""
EXAMPLES = """examples:
  cnnbench history
  cnnbench history --hardware=cpu-2xAMD_EPYC --rejected --plot=history.png
  cnnbench history --storage=/var/lib/cnnbench

  # the history gate outside pytest, with a verdict file for CI: exits 1 on a regression
  cnnbench history --gate=10% --verdict-json=verdicts.json

  # keep a lower level on purpose (after a driver upgrade, say): judged from that run on
  cnnbench history --accept=0042
"""


def add_arguments(history: argparse.ArgumentParser) -> None:
    storage_options(history, "the saved runs")
    history.add_argument("--rejected", action="store_true", help="show the rejected runs too, apart")
    history.add_argument(
        "--plot",
        type=parsed(OPTION["plot"]),
        metavar="PATH",
        help="write a PNG of the history here: speedups with their intervals and the reference's throughput "
        "over time, environment changes, change points and protected levels marked; needs matplotlib "
        "(default: none)",
    )
    gate = OPTION["history-fail"]
    history.add_argument(
        "--gate",
        type=parsed(gate),
        metavar="PCT",
        help=help_text(
            "judge the newest kept run against the protected level of the runs before it: exit 1 when a speedup "
            f"is more than PCT below it, beyond noise, e.g. 10%; the plugin's {gate.flag} (default: no gate)"
        ),
    )
    verdicts = OPTION["verdict-json"]
    history.add_argument(
        "--verdict-json",
        type=parsed(verdicts),
        metavar="PATH",
        help=help_text(f"with --gate: {verdicts.help}"),
    )
    history.add_argument(
        "--accept",
        metavar="RUN",
        help="mark a kept run accepted first (a file, a run number such as 0042, or a name glob): the protected "
        "level starts afresh from it",
    )


def run(args: argparse.Namespace) -> int:
    from cnnbench.report.history import History, text
    from cnnbench.report.history import plot as draw

    if args.verdict_json and args.gate is None:
        raise UsageError("--verdict-json writes the history gate's verdicts; valid: with --gate=PCT")
    storage, searched = args.storage, hardware_classes(args)
    if not searched:
        raise UsageError(f"--storage {storage}: no saved runs there (save some with --benchmark-save=NAME)")
    if len(searched) > 1:
        counts = ", ".join(f"{name} ({len(query(storage / name, '*'))} runs)" for name in searched)
        raise UsageError(f"{storage} holds {len(searched)} hardware classes: {counts}; choose one with --hardware")
    (hardware,) = searched
    kept, apart = query(storage / hardware, "*"), rejected(storage, hardware)
    if args.accept:
        _accept(find(args.accept, "--accept", args), kept, hardware, storage)
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
    return 0 if args.gate is None else _gate(history, args)


def _accept(path: Path, kept: list[Path], hardware: str, storage: Path) -> None:
    from cnnbench.storage.saved import Unreadable, mark_accepted

    if path.resolve() not in {p.resolve() for p in kept}:
        raise UsageError(
            f"--accept {path}: not a kept run of {hardware} in {storage}; valid: a saved run there, not a rejected one"
        )
    try:
        mark_accepted(path)
    except Unreadable as why:
        raise UsageError(f"--accept {path}: {why}") from None
    except OSError as error:
        raise UsageError(f"--accept {path}: could not write it: {error.strerror}") from None
    print(f"cnnbench: {path} marked accepted: the history gate's protected level starts afresh from it")


def _gate(history, args: argparse.Namespace) -> int:
    """The newest kept run judged against the protected level of the kept runs before it."""
    from cnnbench.report.judgement import judge
    from cnnbench.settings.gate import Gate
    from cnnbench.storage.kept import history as as_past
    from cnnbench.storage.saved import is_accepted

    if not history.kept:
        raise UsageError(f"--gate: no kept run of {history.hardware} in {args.storage} to judge")
    *before, newest = history.kept
    report = judge(
        newest.run,
        None,
        Gate(history_fail=args.gate),
        newest.environment or {},
        history.hardware,
        compared=False,
        storage=str(args.storage),
        history=as_past(before),
        accepted=is_accepted(newest),
    )
    first = f"history gate: the newest run, {newest.label}, against the runs before it"
    return show(report, first, (None, None, args.verdict_json))
