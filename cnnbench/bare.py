"""A hand-written training loop with none of cnnbench's machinery: the reference for its overhead.

    python -m cnnbench.bare --model googlenet_cifar_small --batch 32 --threads 1 --steps 4 --rounds 6

prints the median seconds per step over the rounds, pinned to the first ``--threads`` usable
cores, as the suite pins ``single`` on ``cpu:0``. Compare with the suite's median round time
divided by its steps per round.
"""

import argparse
import os
import statistics
import time

import torch

from cnnbench.models import create_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="googlenet_cifar_small")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()

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
    per_step = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        per_step.append((time.perf_counter() - start) / args.steps)
    print(f"{args.model} batch {args.batch}, {args.threads} thread(s): median {statistics.median(per_step):.4f} s/step")


if __name__ == "__main__":
    main()
