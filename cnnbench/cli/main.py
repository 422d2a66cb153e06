"""The ``cnnbench`` command: judge saved runs without running anything (``compare``), show a
hardware class's saved runs over time (``history``), and serve a multi-node run as one of its
other nodes (``join``).

It exits 0, 1 when the gate failed, or 4 on a usage error, said in one line on stderr, as pytest
does. The modules that read saved runs import torch, so each command imports them when it runs:
``--help`` and a bad option answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from cnnbench.settings.gate import Gate
from cnnbench.settings.options import OPTION, Option
from cnnbench.storage.folders import classes, query, rejected

if TYPE_CHECKING:
    from cnnbench.storage.saved import SavedRun

WIDTH = 100  # tables fit a terminal this wide
HANDFUL = 5  # reading more files than this, each is said as it is read
USAGE_ERROR = 4  # pytest's exit status for a usage error
STORAGE = Path(".benchmarks")
TORCH_LOG_LEVEL = "TORCH_CPP_LOG_LEVEL"
FORMATTER = argparse.RawDescriptionHelpFormatter  # descriptions and examples kept as written

DESCRIPTION = """\
Judge saved cnnbench runs without running anything, show a hardware class's runs over time, and
take part in a multi-node run as one of its other nodes.
Saved runs are pytest-benchmark files: --benchmark-save/--benchmark-autosave keep them under
.benchmarks/<hardware class>/, --benchmark-json writes one anywhere.
Exit status: 0; 1 when the gate failed; 4 on a usage error (one line on stderr).
"""
EXAMPLES = """examples:
  cnnbench compare 0003 0004 --speedup-fail=20%
  cnnbench history --plot history.png
  cnnbench join 10.0.0.1:29400
  cnnbench COMMAND --help
"""
COMPARE = """\
Judge NEW against OLD as the plugin judges a run against its --benchmark-compare baseline: the
speedup table, verdicts, environment diff and gate, the same figures as the plugin's summary.
OLD and NEW are file paths, or run numbers and name globs in --storage, as --benchmark-compare
takes them (the newest run a glob matches). Runs of two hardware classes are refused unless
--any-hardware is given.
"""
COMPARE_EXAMPLES = """examples:
  # a regression, from the saved runs in tests/data: exits 1
  cnnbench compare tests/data/paired_idle.json tests/data/paired_straggler.json --speedup-fail=20%

  # the newest run saved as main against the newest run of all, with a report for CI
  cnnbench compare '*_main' '*' --speedup-fail=10% --min-efficiency=0.7 --report=scaling.md

  # run numbers in another storage folder, one hardware class of several
  cnnbench compare 0003 0007 --storage=/var/lib/cnnbench --hardware=cuda-3xNVIDIA_H200 --plot=scaling.png
"""
HISTORY = """\
Every saved run of one hardware class, oldest first: each configuration's speedup with its 95%
interval, the reference's images per second, and each change of environment (driver, CUDA,
NCCL, torch, GPUs, topology) since the run before, numbered in the env column. Runs kept out of
the baselines (rejected/) are left out unless --rejected is given, then shown apart.
"""
HISTORY_EXAMPLES = """examples:
  cnnbench history
  cnnbench history --hardware=cpu-2xAMD_EPYC --rejected --plot=history.png
  cnnbench history --storage=/var/lib/cnnbench
"""
JOIN = """\
Serve a multi-node run as one of its other nodes: connect to the controller (the pytest run on the
first node, with --cnnbench-rdzv=HOST:PORT and a set such as '2x cuda:0,1,2,3'), then, for each
group of a multi-node set, start this node's ranks through torch's elastic agent with a c10d
rendezvous at HOST:PORT, until the controller ends the run. Everything else comes from the
controller; this node needs the same cnnbench, torch and model code, and the same local devices.
Ranks use the network interface that reaches HOST unless NCCL_SOCKET_IFNAME (GPUs) or
GLOO_SOCKET_IFNAME (CPU ranks) names one. Exit status: 0 when the controller ended the run; 1
when it never answered or went away first.
"""
JOIN_EXAMPLES = """examples:
  # node 1:  pytest perf_tests --cnnbench-devices='cuda:0 2x cuda:0,1,2,3' --cnnbench-rdzv=10.0.0.1:29400
  # node 2:
  cnnbench join 10.0.0.1:29400
  NCCL_SOCKET_IFNAME=ens5 cnnbench join 10.0.0.1:29400 --wait=1800
"""


class UsageError(Exception):
    """A mistake in what the command was asked; one line, exit 4."""


class _Parser(argparse.ArgumentParser):
    """Usage errors raise UsageError: one line and exit 4, rather than argparse's usage and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message.removeprefix('argument ')} (see {self.prog} --help)")


def _parsed(option: Option) -> Callable[[str], Any]:
    """An argparse type from the option table's parser: a bad value says what the plugin says."""

    def parse(text: str) -> Any:
        try:
            return option.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _help(text: str) -> str:
    return text.replace("%", "%%")  # argparse formats help with %


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cnnbench", description=DESCRIPTION, epilog=EXAMPLES, formatter_class=FORMATTER)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    compare = _command(commands, "compare", "judge a saved run against another", COMPARE, COMPARE_EXAMPLES)
    compare.set_defaults(command=_compare)
    compare.add_argument("old", metavar="OLD", help="the baseline: a file, a run number (0003) or a name glob (*_main)")
    compare.add_argument("new", metavar="NEW", help="the run to judge, named the same ways")
    _storage_options(compare, "where OLD and NEW are looked for when they are not files")
    for gate in fields(Gate):  # every gate the plugin has, parsed by its parser
        option = OPTION[gate.name.replace("_", "-")]
        compare.add_argument(
            f"--{option.name}",
            dest=gate.name,
            type=_parsed(option),
            metavar=option.metavar,
            help=_help(f"{option.help}; the plugin's {option.flag}, with OLD as the baseline"),
        )
    anyway = OPTION["compare-any-hardware"]
    compare.add_argument(
        "--any-hardware", action="store_true", help=f"compare runs of two hardware classes (the plugin's {anyway.flag})"
    )
    for name in ("report", "plot"):
        option = OPTION[name]
        compare.add_argument(f"--{name}", type=_parsed(option), metavar="PATH", help=_help(option.help))

    history = _command(commands, "history", "a hardware class's saved runs over time", HISTORY, HISTORY_EXAMPLES)
    history.set_defaults(command=_history)
    _storage_options(history, "the saved runs")
    history.add_argument("--rejected", action="store_true", help="show the rejected runs too, apart")
    history.add_argument(
        "--plot",
        type=_parsed(OPTION["plot"]),
        metavar="PATH",
        help="write a PNG of the history here: speedups with their intervals and the reference's throughput "
        "over time, environment changes marked; needs matplotlib (default: none)",
    )
    join = _command(commands, "join", "serve a multi-node run as one of its other nodes", JOIN, JOIN_EXAMPLES)
    join.set_defaults(command=_join, plot=None)
    join.add_argument("rdzv", metavar="HOST:PORT", type=_endpoint, help="the controller's --cnnbench-rdzv")
    join.add_argument(
        "--wait",
        type=_parsed(OPTION["timeout"]),
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for the controller to answer (default: 600)",
    )
    return parser


def _endpoint(text: str) -> Any:
    # join's first import of torch. Its store client logs every failed attempt to reach the
    # controller with a C++ stack, and join says what happened in one line. torch reads the level
    # once, at its import: set it for that moment only, so the agents and ranks join starts keep the user's.
    level = os.environ.get(TORCH_LOG_LEVEL)
    os.environ[TORCH_LOG_LEVEL] = "FATAL"
    try:
        from cnnbench.machine.network import parse_endpoint
    finally:
        if level is None:
            del os.environ[TORCH_LOG_LEVEL]
        else:
            os.environ[TORCH_LOG_LEVEL] = level
    try:
        return parse_endpoint(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _join(args: argparse.Namespace) -> int:
    from cnnbench.ranks.nodes import join

    return join(args.rdzv, args.wait, say=lambda line: print(line, flush=True))


def _command(commands, name: str, summary: str, description: str, examples: str) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=summary, description=description, epilog=examples, formatter_class=FORMATTER)


def _storage_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--storage",
        type=Path,
        default=STORAGE,
        metavar="PATH",
        help=f"the storage folder, as --benchmark-storage: {what} (default: {STORAGE})",
    )
    parser.add_argument(
        "--hardware",
        metavar="CLASS",
        help="the hardware class, a folder in --storage such as cpu-2xAMD_EPYC (default: the only one that "
        "holds the runs asked for)",
    )


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


def _compare(args: argparse.Namespace) -> int:
    new_path, old_path = _find(args.new, "NEW", args), _find(args.old, "OLD", args)
    new, old = _read(new_path, "NEW"), _read(old_path, "OLD")
    hardware = _hardware(new, "NEW")
    if hardware is None:
        raise UsageError(f"NEW {new.source}: no machine_info.cnnbench, so not a run saved by cnnbench")
    theirs = None if args.any_hardware else _hardware(old, "OLD", " (--any-hardware to compare anyway)")
    if theirs is not None and theirs != hardware:
        raise UsageError(
            f"OLD {old.source} comes from {theirs}, NEW {new.source} from {hardware}; speedups compare only "
            "within one hardware class (--any-hardware to compare anyway)"
        )
    from cnnbench.report.judgement import judge
    from cnnbench.report.render import text, write_files

    gate = Gate(**{gate.name: getattr(args, gate.name) for gate in fields(Gate)})
    report = judge(new.run, old, gate, new.environment, hardware, compared=True, storage=str(args.storage))
    *lines, verdict = text(report, WIDTH)
    print(f"run: {new.source}", *lines, sep="\n")
    try:
        write_files(report, args.report, args.plot, print)
    except OSError as error:
        raise UsageError(f"could not write {error.filename}: {error.strerror}") from None
    print(verdict)
    return 1 if report.outcome.failed else 0


def _find(wanted: str, role: str, args: argparse.Namespace) -> Path:
    """The file ``wanted`` names: itself, or the newest saved run it matches in one hardware class."""
    if Path(wanted).is_file():
        return Path(wanted)
    searched = _classes(args)
    try:
        found = {hardware: paths for hardware in searched if (paths := query(args.storage / hardware, wanted))}
    except ValueError:  # a path of three or more parts that is no file
        found = {}
    if not found and wanted.endswith(".json"):
        raise UsageError(f"{role} {wanted}: cannot read it (no such file)")
    if not found:
        raise UsageError(f"{role} {wanted!r} matches no saved run in {args.storage}; there: {_there(args, searched)}")
    if len(found) > 1:
        which = "; ".join(f"{hardware} ({', '.join(p.name for p in paths)})" for hardware, paths in found.items())
        raise UsageError(
            f"{role} {wanted!r} matches runs of {len(found)} hardware classes: {which}; choose one with --hardware"
        )
    (paths,) = found.values()
    newest = _shown(paths[-1])
    if len(paths) > 1:
        print(f"cnnbench: {role} {wanted!r} matches {len(paths)} runs; taking the newest, {newest}", file=sys.stderr)
    return newest


def _shown(path: Path) -> Path:
    """Relative to the working folder where it lies below it: pytest-benchmark's storage gives absolute paths."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def _classes(args: argparse.Namespace) -> list[str]:
    """The hardware classes to look in: the one --hardware names, or every one that holds runs."""
    held = classes(args.storage)
    if args.hardware is None:
        return held
    if args.hardware not in held:
        there = ", ".join(held) or "none"
        raise UsageError(
            f"--hardware {args.hardware}: no saved runs of that class in {args.storage}; classes there: {there}"
        )
    return [args.hardware]


def _there(args: argparse.Namespace, searched: list[str], most: int = 6) -> str:
    """What the storage holds, a few names per class."""
    said = []
    for hardware in searched:
        names = [path.name for path in query(args.storage / hardware, "*")]
        more = f" and {len(names) - most} more" if len(names) > most else ""
        said.append(f"{hardware}: {', '.join(names[-most:])}{more}")
    return "; ".join(said) or "no saved run"


def _read(path: Path, role: str) -> SavedRun:
    from cnnbench.storage.saved import Unreadable, read_file

    try:
        saved = read_file(path)
    except Unreadable as why:
        raise UsageError(f"{role} {path}: {why}") from None
    if not saved.run.results:
        unusable = next(iter(saved.unusable.items()), None)
        why = f"no usable cnnbench result ({unusable[0]}: {unusable[1]})" if unusable else "no cnnbench result"
        raise UsageError(f"{role} {path}: {why}")
    return saved


def _hardware(saved: SavedRun, role: str, anyway: str = "") -> str | None:
    try:
        return saved.hardware
    except ValueError as why:
        raise UsageError(f"{role} {saved.source}: {why}{anyway}") from None


def _history(args: argparse.Namespace) -> int:
    from cnnbench.report.history import History, text
    from cnnbench.report.history import plot as draw

    storage, searched = args.storage, _classes(args)
    if not searched:
        raise UsageError(f"--storage {storage}: no saved runs there (save some with --benchmark-save=NAME)")
    if len(searched) > 1:
        counts = ", ".join(f"{name} ({len(query(storage / name, '*'))} runs)" for name in searched)
        raise UsageError(f"{storage} holds {len(searched)} hardware classes: {counts}; choose one with --hardware")
    (hardware,) = searched
    kept, apart = query(storage / hardware, "*"), rejected(storage, hardware)
    runs = _read_all([*kept, *apart] if args.rejected else kept)
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


def _read_all(paths: list[Path]) -> dict[Path, SavedRun]:
    """Every readable run, each said on stderr as it is read when there are more than a handful;
    an unreadable one is skipped with the reason."""
    from cnnbench.storage.saved import Unreadable, read_file

    runs = {}
    for done, path in enumerate(paths, 1):
        if len(paths) > HANDFUL:
            print(f"cnnbench: reading {done}/{len(paths)}: {path}", file=sys.stderr)
        try:
            runs[path] = read_file(path)
        except Unreadable as why:
            print(f"cnnbench: skipped {path}: {why}", file=sys.stderr)
    return runs
