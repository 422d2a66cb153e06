"""A loader's ``Feed`` for tests: one process, 32 images a batch, on the CPU, changed where asked."""

import torch

from cnnbench.workload.data import Feed


def feed(**changes) -> Feed:
    fields = {"batch": 32, "device": torch.device("cpu"), "rank": 0, "ranks": 1, "seed": 0}
    fields |= {"channels_last": False, "workers": 0, "timeout": 5.0}
    return Feed(**(fields | changes))
