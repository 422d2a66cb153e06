"""Time training steps: one benchmark per model config x parallel wrapper x device set.

Each benchmark round is ``steps`` training steps on every rank of the device set, measured on
the host from the command to the last rank's report (each rank has synchronized its device).
Before each round of a configuration other than the reference itself, one round of its reference
runs (outside pytest-benchmark's timed call, timed by cnnbench with the same clock): the pairs
give the speedup.
"""

import math


def test_train(benchmark, cnnbench_case, cnnbench_group):
    benchmark.pedantic(
        cnnbench_group.run_round, setup=cnnbench_group.before_round, rounds=cnnbench_case.rounds, iterations=1
    )
    assert all(math.isfinite(loss) for loss in cnnbench_group.losses), f"training diverged: {cnnbench_group.losses}"
