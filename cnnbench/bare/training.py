"""A hand-written training loop with none of cnnbench's machinery: the reference for its overhead.

It trains a model on one seeded synthetic batch, pinned to the first ``--threads`` usable cores as
the suite pins ``single`` on ``cpu:0``, and prints images per second at the median round time, the
suite's own figure; ``--compare`` puts a saved suite run's ``single`` results beside it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch

from cnnbench.results.run import Unusable
from cnnbench.settings.options import PROFILES
from cnnbench.storage.saved import Unreadable, load
from cnnbench.storage.schema import FIELD, IMAGES_PER_SECOND
from cnnbench.workload.models import create_model, list_models
from cnnbench.workload.wrappers import is_reference, reference_wrapper

QUICK = PROFILES["quick"]  # the loop's defaults: the CPU profile's sizes
REFERENCE = reference_wrapper().name  # the wrapper whose saved results this loop is compared with
SIZES = {"global_batch": "batch", "steps_per_round": "steps", "threads_per_rank": "threads"}  # saved key: option

DESCRIPTION = """\
Times a hand-written training loop with none of cnnbench's machinery, the reference for its
overhead. Prints images per second at the median round time, as the suite does, and ms per step.
"""
EXAMPLE = """examples:
  python -m cnnbench.bare --model googlenet_cifar_small --batch 32 --threads 1 --steps 3 --rounds 6

  # beside a saved run of the suite, where cpu:0 alone gets every usable core
  pytest perf_tests --cnnbench-devices=cpu:0 --cnnbench-wrappers=single --benchmark-json=run.json
  python -m cnnbench.bare --threads "$(nproc)" --compare run.json
"""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in every option's help; the examples kept as written."""


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than ``minimum``, else a one-line usage error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cnnbench.bare",
        description=DESCRIPTION,
        epilog=EXAMPLE,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--model", default=QUICK["models"][0], help=f"one of: {', '.join(list_models())}")
    parser.add_argument("--batch", type=_at_least(1), default=QUICK["batch_size"], help="images per step")
    parser.add_argument("--threads", type=_at_least(1), default=1, help="torch threads, pinned to as many usable cores")
    parser.add_argument("--steps", type=_at_least(1), default=QUICK["steps"], help="steps per timed round")
    parser.add_argument(
        "--rounds", type=_at_least(1), default=QUICK["rounds"], help="timed rounds; the figure is their median"
    )
    parser.add_argument(
        "--warmup", type=_at_least(0), default=QUICK["warmup"], help="untimed steps before the first round"
    )
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="PATH",
        help=f"a saved pytest-benchmark JSON file (--benchmark-json, .benchmarks/...): print its {REFERENCE} "
        "results for --model beside this loop's",
    )
    return parser


class SuiteResult(NamedTuple):
    device_set: str
    images_per_second: float
    sizes: dict[str, Any]  # by saved key, those of SIZES it holds


NEEDED = tuple(FIELD[key] for key in ("model", "wrapper", "device_set", "global_batch", "steps_per_round"))


def suite_results(path: Path, model: str) -> list[SuiteResult]:
    """The ``single`` results for ``model`` in a saved run, each key read as the saved-run schema
    reads it; a one-line ValueError if it cannot be read or has none."""
    try:
        benchmarks = load(path)["benchmarks"]
    except Unreadable as why:
        raise ValueError(f"--compare {path}: {why}") from None
    infos = [b["extra_info"] for b in benchmarks if isinstance(b, dict) and isinstance(b.get("extra_info"), dict)]
    found = [info for info in infos if info.get("model") == model and is_reference(str(info.get("wrapper")))]
    if not found:
        held: dict[str, set[str]] = {}
        for info in infos:
            if "model" in info and "wrapper" in info:
                held.setdefault(str(info["model"]), set()).add(str(info["wrapper"]))
        has = "; ".join(f"{name} ({', '.join(sorted(wrappers))})" for name, wrappers in sorted(held.items()))
        raise ValueError(
            f"--compare {path}: no {REFERENCE} result for model {model!r}; "
            + (f"it has: {has}" if has else "it has no cnnbench results")
        )
    results = []
    for info in found:
        read, bad = {}, []
        for field in (*NEEDED, IMAGES_PER_SECOND, FIELD["threads_per_rank"]):
            try:
                read[field.key] = field.value(info)
            except (Unusable, TypeError, ValueError):
                bad.append(field.key)
        if bad:
            raise ValueError(f"--compare {path}: a {REFERENCE} {model} result lacks a valid {', '.join(bad)}")
        sizes = {key: read[key] for key in SIZES if read[key] is not None}
        results.append(SuiteResult(read["device_set"], read[IMAGES_PER_SECOND.key], sizes))
    return results


def time_rounds(args: argparse.Namespace) -> list[float]:
    """Seconds per timed round of ``args.steps`` training steps, after ``args.warmup`` untimed ones."""
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.threads])
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model(args.model).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images, labels = torch.randn(args.batch, 3, 32, 32), torch.randint(10, (args.batch,))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    rounds = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        rounds.append(time.perf_counter() - start)
    return rounds


def main(argv: Sequence[str] | None = None) -> None:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.model not in list_models():
        parser.error(f"argument --model: unknown model {args.model!r}; valid models: {', '.join(list_models())}")
    cores = len(os.sched_getaffinity(0))
    if args.threads > cores:
        parser.error(f"argument --threads: {args.threads} threads, but this process may use only {cores} core(s)")
    suite = []
    if args.compare is not None:
        try:
            suite = suite_results(args.compare, args.model)
        except ValueError as error:
            parser.error(str(error))

    rounds = time_rounds(args)
    ours = args.batch * args.steps / statistics.median(rounds)  # as the suite's images_per_second
    ms_per_step = statistics.median(rounds) / args.steps * 1000
    print(
        f"{args.model} batch {args.batch}, {args.threads} thread(s), {args.rounds} round(s) of {args.steps} step(s): "
        f"{ours:.1f} img/s (median), {ms_per_step:.2f} ms/step"
    )
    for saved in suite:
        label = f"suite {REFERENCE} {saved.device_set}"
        print(f"{label}: {saved.images_per_second:.1f} img/s = {saved.images_per_second / ours:.2f}x of this loop")
        differ = [
            f"{option} {saved.sizes[key]} there, {getattr(args, option)} here"
            for key, option in SIZES.items()
            if key in saved.sizes and saved.sizes[key] != getattr(args, option)
        ]
        if differ:
            print(
                f"warning: {label} ran other sizes ({'; '.join(differ)}): not a like-for-like comparison",
                file=sys.stderr,
            )


if __name__ == "__main__":
    main()
