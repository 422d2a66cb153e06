"""One node's torch elastic agent for one group of a multi-node set:
``python -m cnnbench.ranks.agent HOST:PORT GROUP``, started by the controller on its own node and by
``cnnbench join`` on the others. It reads the group's case and its ranks' command line from the
controller's store, then starts this node's ranks with torch's ``elastic_launch`` (torchrun's
engine): a c10d rendezvous on that same store, no restarts, ranks numbered node by node. It
hosts nothing: the rendezvous store is the controller's, and the store torch would share with the
ranks is switched off.
"""

import json
import os
import signal
import socket
import sys
import tempfile

if __name__ == "__main__":  # first: see cnnbench.machine.lifeline
    from cnnbench.machine.lifeline import die_with_parent

    die_with_parent()

from datetime import timedelta

import torch.distributed as dist
from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, record
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from cnnbench.machine.network import parse_endpoint
from cnnbench.ranks.protocol import (
    FAILURES,
    GROUP_NAME,
    STOP_SIGNALS,
    STORE_ADDRESS,
    WORKER_MODULE,
    describe_failures,
    failure_report,
    worker_environment,
)
from cnnbench.settings.cases import Case

JOIN_SLACK = 2  # the agents wait this many timeouts for the others: the controller, waiting one, says why first


@record
def main(endpoint_text: str, group: str) -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked in the controller while it started us
    endpoint = parse_endpoint(endpoint_text)
    store = dist.PrefixStore(group, dist.TCPStore(endpoint.host, endpoint.port, timeout=timedelta(seconds=60)))
    case = Case.from_json(store.get("case").decode())
    argv = json.loads(store.get("argv"))
    if argv[:2] != ["-m", WORKER_MODULE]:  # an agent starts cnnbench ranks, nothing else
        raise ValueError(f"group {group} at {endpoint} asks for {' '.join(argv[:2])}, not a cnnbench rank")
    store.add("nodes", 1)  # this node took the group
    os.environ.update(
        {
            **worker_environment(case, endpoint.interface()),
            STORE_ADDRESS: str(endpoint),
            GROUP_NAME: group,
            "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1",  # else rank 0's agent would listen on every interface
        }
    )
    config = LaunchConfig(
        min_nodes=case.devices.nodes,
        max_nodes=case.devices.nodes,
        nproc_per_node=len(case.devices.indices),
        run_id=group,
        rdzv_backend="c10d",
        rdzv_endpoint=str(endpoint),
        rdzv_configs={"is_host": False, "join_timeout": int(JOIN_SLACK * case.timeout) + 1},
        max_restarts=0,
        local_addr=endpoint.source(),
    )
    with tempfile.TemporaryDirectory(prefix="cnnbench-") as logs:  # error files; output goes to the agent's
        config.logs_specs = DefaultLogsSpecs(log_dir=logs)
        try:
            elastic_launch(config, sys.executable)(*argv)
        except ChildFailedError as error:  # told to the controller, which has no other way to hear it
            report = f"{socket.gethostname()}: {describe_failures(error.failures)}"
            store.set(failure_report(store.add(FAILURES, 1)), report)
            sys.exit(report)


if __name__ == "__main__":
    main(*sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # its ranks are done: as a rank's, this interpreter's teardown is time nobody needs
