"""A plain all-reduce loop, run with torchrun: the reference for cnnbench's bus bandwidth figures.

Its own code, none of cnnbench's, measuring as nccl-tests does: per size, 5 warm-up iterations,
then ``--iterations`` timed as one loop, the device synchronized before and after; each CPU rank
pinned to its own core as ``cpu:i`` is. Rank 0 prints algbw and busbw per size at the slowest
rank's mean time, the figure cnnbench saves.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

import torch
import torch.distributed as dist

EXAMPLE = """examples (the sizes: a saved run's all_reduce_buckets, e.g. the quick model's two buckets):
  torchrun --nproc-per-node=2 -m cnnbench.bare.all_reduce --bytes 1059368 511584
  torchrun --nproc-per-node=4 -m cnnbench.bare.all_reduce --device cuda --bytes 1059368 23605632
"""


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torchrun --nproc-per-node=N -m cnnbench.bare.all_reduce",
        description=__doc__.split("\n\n")[0],
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bytes", type=int, nargs="+", required=True, help="all-reduce sizes in bytes (fp32)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="gloo on CPU ranks, nccl on GPUs")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=200)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if args.device == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
        dist.init_process_group("nccl")

        def synchronize() -> None:
            torch.cuda.synchronize(device)
    else:
        device = torch.device("cpu")
        os.sched_setaffinity(0, [sorted(os.sched_getaffinity(0))[int(os.environ["LOCAL_RANK"])]])
        torch.set_num_threads(1)
        dist.init_process_group("gloo")

        def synchronize() -> None:
            pass  # CPU collectives have finished when they return

    for size in args.bytes:
        buffer = torch.ones(size // 4, device=device)
        for _ in range(args.warmup):
            dist.all_reduce(buffer)
        synchronize()
        start = time.perf_counter()
        for _ in range(args.iterations):
            dist.all_reduce(buffer)
        synchronize()
        slowest = torch.tensor([(time.perf_counter() - start) / args.iterations], dtype=torch.float64, device=device)
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        seconds = slowest.item()
        algbw = size / seconds / 1e9
        if rank == 0:
            busbw = algbw * 2 * (world - 1) / world
            print(f"{size:>10} bytes  {seconds * 1e3:7.3f} ms  algbw {algbw:6.3f} GB/s  busbw {busbw:6.3f} GB/s")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
