"""``cnnbench join HOST:PORT``: serve a multi-node run as one of its other nodes."""

from __future__ import annotations

import argparse
import os
from typing import Any

from cnnbench.cli.common import parsed
from cnnbench.settings.options import OPTION

NAME, SUMMARY = "join", "serve a multi-node run as one of its other nodes"
TORCH_LOG_LEVEL = "TORCH_CPP_LOG_LEVEL"
DESCRIPTION = """\
Serve a multi-node run as one of its other nodes: connect to the controller (the pytest run on the
first node, with --cnnbench-rdzv=HOST:PORT and a set such as '2x cuda:0,1,2,3'), then, for each
group of a multi-node set, start this node's ranks through torch's elastic agent with a c10d
rendezvous at HOST:PORT, until the controller ends the run. Everything else comes from the
controller; this node needs the same cnnbench, torch and model code, and the same local devices.
Ranks use the network interface that reaches HOST unless NCCL_SOCKET_IFNAME (GPUs) or
GLOO_SOCKET_IFNAME (CPU ranks) names one. Exit status: 0 when the controller ended the run; 1
when it never answered or went away first.
"""
EXAMPLES = """examples:
  # node 1:  pytest perf_tests --cnnbench-devices='cuda:0 2x cuda:0,1,2,3' --cnnbench-rdzv=10.0.0.1:29400
  # node 2:
  cnnbench join 10.0.0.1:29400
  NCCL_SOCKET_IFNAME=ens5 cnnbench join 10.0.0.1:29400 --wait=1800
"""


def add_arguments(join: argparse.ArgumentParser) -> None:
    join.set_defaults(plot=None)
    join.add_argument("rdzv", metavar="HOST:PORT", type=_endpoint, help="the controller's --cnnbench-rdzv")
    join.add_argument(
        "--wait",
        type=parsed(OPTION["timeout"]),
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for the controller to answer (default: 600)",
    )


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


def run(args: argparse.Namespace) -> int:
    from cnnbench.ranks.nodes import join

    return join(args.rdzv, args.wait, say=lambda line: print(line, flush=True))
