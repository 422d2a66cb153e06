"""The plain all-reduce loop under torchrun: nccl-tests' figures per size."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys

import pytest

TINY = ["--model", "googlenet_cifar_small", "--batch", "2", "--steps", "1", "--rounds", "1", "--warmup", "0"]
OURS = re.compile(r"^googlenet_cifar_small batch 2, 1 thread\(s\), .*: ([\d.]+) img/s \(median\), ([\d.]+) ms/step$")


def test_the_plain_all_reduce_loop_prints_nccl_tests_figures_per_size():
    """Two gloo ranks under torchrun, as its --help says to run it."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    with socket.socket() as probe:  # a free port on loopback for torchrun's store
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--master-addr=127.0.0.1"]
    command += [f"--master-port={port}", "-m", "cnnbench.bare.all_reduce", "--bytes", "4096", "65536"]
    run = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        out, err = run.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)  # torchrun and both ranks, whatever happened
    assert run.returncode == 0, err
    lines = [line.split() for line in out.splitlines() if "busbw" in line]
    assert [int(line[0]) for line in lines] == [4096, 65536]  # one line per size, from rank 0 alone
    for line in lines:
        seconds, algbw, busbw = float(line[2]) / 1e3, float(line[5]), float(line[8])
        assert algbw == pytest.approx(int(line[0]) / seconds / 1e9, rel=0.05, abs=1e-3)  # as printed
        assert busbw == pytest.approx(algbw)  # two ranks: 2(n-1)/n = 1
