"""What the ``cnnbench`` commands share: one-line usage errors, option parsers from the plugin's
option table, and finding and reading saved runs in a storage folder."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from cnnbench.settings.options import Option
from cnnbench.storage.folders import classes, query

if TYPE_CHECKING:
    from cnnbench.report.judgement import Report
    from cnnbench.results.verdicts import Outcome
    from cnnbench.storage.saved import SavedRun

WIDTH = 100  # tables fit a terminal this wide
HANDFUL = 5  # reading more files than this, each is said as it is read
USAGE_ERROR = 4  # pytest's exit status for a usage error
STORAGE = Path(".benchmarks")
FORMATTER = argparse.RawDescriptionHelpFormatter  # descriptions and examples kept as written


class UsageError(Exception):
    """A mistake in what the command was asked; one line, exit 4."""


class Parser(argparse.ArgumentParser):
    """Usage errors raise UsageError: one line and exit 4, rather than argparse's usage and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message.removeprefix('argument ')} (see {self.prog} --help)")


def parsed(option: Option) -> Callable[[str], Any]:
    """An argparse type from the option table's parser: a bad value says what the plugin says."""

    def parse(text: str) -> Any:
        try:
            return option.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def help_text(text: str) -> str:
    return text.replace("%", "%%")  # argparse formats help with %


def storage_options(parser: argparse.ArgumentParser, what: str) -> None:
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


def find(wanted: str, role: str, args: argparse.Namespace, with_rejected: bool = False) -> Path:
    """The file ``wanted`` names: itself, or the newest saved run it matches in one hardware class
    (rejected runs too, where ``with_rejected``)."""
    if Path(wanted).is_file():
        return Path(wanted)
    searched = hardware_classes(args)
    try:
        found = {
            hardware: paths
            for hardware in searched
            if (paths := query(args.storage / hardware, wanted, with_rejected=with_rejected))
        }
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


def hardware_classes(args: argparse.Namespace) -> list[str]:
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


def read(path: Path, role: str) -> SavedRun:
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


def hardware_of(saved: SavedRun, role: str, anyway: str = "") -> str | None:
    try:
        return saved.hardware
    except ValueError as why:
        raise UsageError(f"{role} {saved.source}: {why}{anyway}") from None


def read_all(paths: list[Path]) -> dict[Path, SavedRun]:
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


def annotated(outcome: Outcome) -> list[str]:
    """The failed checks as GitHub annotations, under GitHub Actions; nothing elsewhere."""
    from cnnbench.report.ci import annotations, on_github

    return annotations(outcome) if on_github() else []


def show(report: Report, first: str, files: tuple[Path | None, Path | None, Path | None]) -> int:
    """A judged run as both commands print it: ``first``, the tables and context, the files asked for
    (report, plot, verdict file), the gate's line last, then any annotations; the exit status."""
    from cnnbench.report.render import text, write_files

    *lines, verdict = text(report, WIDTH)
    print(first, *lines, sep="\n")
    try:
        write_files(report, files[0], files[1], print, files[2])
    except OSError as error:
        raise UsageError(f"could not write {error.filename}: {error.strerror}") from None
    print(verdict)
    for line in annotated(report.outcome):
        print(line)
    return 1 if report.outcome.failed else 0
