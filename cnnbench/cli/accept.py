"""``cnnbench accept RUN``: make a saved or rejected run the baseline its hardware class compares
with next, the way to move on after a deliberate change that costs scaling."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from cnnbench.cli.common import UsageError, find, hardware_of, read, storage_options
from cnnbench.storage.folders import accept, baseline, machine_id

NAME, SUMMARY = "accept", "make a saved or rejected run the baseline its hardware class compares with next"
DESCRIPTION = """\
After a deliberate change that costs scaling, the gate fails every run against the old level and
keeps it out of the baselines. Make RUN the baseline that the next bare --benchmark-compare of its
hardware class compares with: a copy of RUN is saved as its class's next run,
<storage>/<hardware class>/<machine id>/NNNN_accepted_<name>.json (this Python's folder, where
--benchmark-save saves next), with when it was accepted and from which file. No saved file is
changed or removed: the run it replaces stays where it was, and says so in cnnbench history.
RUN is a file path (a run kept in rejected/, a --benchmark-json file), or a run number (0003) or
name glob (*_main, rejected/*_main) of a saved or rejected run in --storage; a glob that matches
several takes the newest by name.
Exit status: 0; 4 on a usage error (one line on stderr).
"""
EXAMPLES = """examples:
  # main's run after the change was rejected; its path is in the job's log ("kept for inspection as ...")
  cnnbench accept .benchmarks/cuda-3xNVIDIA_H200/rejected/20261205_101500_main.json
  cnnbench accept 'rejected/*_main' --storage=/var/lib/cnnbench/benchmarks
  cnnbench accept 0007 --hardware=cpu-2xAMD_EPYC
"""
PREFIX = re.compile(r"^(\d{4}_|\d{8}_\d{6}_)?(accepted_)?")  # a run number or a rejected run's time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(plot=None)
    parser.add_argument(
        "run", metavar="RUN", help="a file, or a run number (0003) or name glob (rejected/*_main) in --storage"
    )
    storage_options(parser, "where RUN is looked for when it is not a file, and where it is kept")


def run(args: argparse.Namespace) -> int:
    from cnnbench.storage.saved import load

    path = find(args.run, "RUN", args, with_rejected=True)
    hardware = hardware_of(read(path, "RUN"), "RUN")
    if hardware is None:
        raise UsageError(f"RUN {path}: no machine_info.cnnbench, so its hardware class is unknown")
    for said in (args.hardware, _stored_class(path, args.storage)):
        if said is not None and said != hardware:
            raise UsageError(f"RUN {path} ran on {hardware}, not {said}: a run is a baseline of its own class only")
    folder = args.storage / hardware
    before = baseline(folder)
    if before is not None and before.resolve() == path.resolve():
        print(f"cnnbench: {path} is already the baseline of {hardware}; nothing was copied")
        return 0
    kept = accept(load(path), _origin(path, args.storage), folder / machine_id(), PREFIX.sub("", path.stem) or "run")
    if (newest := baseline(folder)) != kept:  # saved with a time ahead of this machine's clock
        kept.unlink()
        raise UsageError(
            f"RUN {path}: {newest} was saved later than this machine's clock says it is now, so a run accepted "
            "now cannot replace it as the baseline; nothing was copied"
        )
    print(f"cnnbench: accepted {path} as {kept}: the next --benchmark-compare of {hardware} compares with it")
    print(f"cnnbench: it replaces {before} as the baseline" if before else f"cnnbench: {hardware} had no baseline")
    return 0


def _origin(path: Path, storage: Path) -> str:
    """Where the accepted run came from: its path in the storage, else its full path."""
    try:
        return str(path.resolve().relative_to(storage.resolve()))
    except ValueError:
        return str(path.resolve())


def _stored_class(path: Path, storage: Path) -> str | None:
    """The hardware class folder of ``storage`` that ``path`` lies in; None where it lies elsewhere."""
    try:
        parts = path.resolve().relative_to(storage.resolve()).parts
    except ValueError:
        return None
    return parts[0] if len(parts) >= 2 else None
