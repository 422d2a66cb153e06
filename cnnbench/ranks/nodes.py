"""Device sets on several nodes: the rendezvous the controller hosts, and ``cnnbench join``.

The controller (the pytest process on the first node) hosts one TCPStore for the run, bound to
the one address the user names (``--cnnbench-rdzv=HOST:PORT``). Each group of a multi-node set is
announced there as ``next/<n>``, with its case and its ranks' command line under ``<group>/``
(the controller's registries name the modules a rank imports). On every node, the
controller's included, one torch elastic agent per group (``python -m cnnbench.ranks.agent``) meets the
others' through a c10d rendezvous on the same store and starts that node's ranks. Other nodes run
``cnnbench join HOST:PORT``: it takes each announced group, starts its agent, stops it when the
controller says so, and ends with the run. It needs no options: the cases come from the store.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta

import torch.distributed as dist

from cnnbench.machine.lifeline import PARENT_PID
from cnnbench.machine.network import Endpoint, network
from cnnbench.settings.cases import Case

END = "end"  # announced last: the run is over
POLL_SECONDS = 0.2  # how often ``join`` looks at the store
LEAVE_SECONDS = 5.0  # how long the controller's store stays for the joined nodes to hear that the run ended
JOINED, LEFT = "nodes/joined", "nodes/left"  # counters of the nodes that joined the run and that heard its end


class Nodes:
    """The controller's side: the run's store on the named address, and the groups announced on it."""

    def __init__(self, endpoint: Endpoint, timeout: float):
        self.endpoint = endpoint
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((endpoint.host, endpoint.port))
        except OSError as error:
            listener.close()
            raise RuntimeError(f"cannot listen on {endpoint} (--cnnbench-rdzv): {error.strerror}") from None
        listener.listen(128)
        self.store = dist.TCPStore(
            endpoint.host,
            endpoint.port,
            is_master=True,
            wait_for_workers=False,
            timeout=timedelta(seconds=timeout),
            master_listen_fd=listener.detach(),
            multi_tenant=True,
        )
        self._announced = 0

    def announce(self, case: Case, argv: tuple[str, ...]) -> str:
        """Offer ``case``'s group, whose ranks run ``argv``, to every node; returns the group's
        name, its key prefix."""
        group = f"g{self._announced}"
        self.store.set(f"{group}/case", case.to_json())
        self.store.set(f"{group}/argv", json.dumps(argv))
        self.store.set(f"next/{self._announced}", group)
        self._announced += 1
        return group

    def took(self, group: str) -> int:
        """How many nodes started an agent for ``group``."""
        return self.store.add(f"{group}/nodes", 0)

    def finish(self, group: str) -> None:
        """Tell the other nodes to stop ``group``'s agent if it still runs."""
        self.store.set(f"{group}/stop", "")

    def environments(self) -> dict[str, dict]:
        """The fingerprints the joined nodes published, by host name (``#2`` for a second on one host)."""
        found: dict[str, dict] = {}
        published = [f"nodes/{n}" for n in range(self.store.add(JOINED, 0))]
        for key in filter(lambda key: self.store.check([key]), published):  # not a node still starting
            environment = json.loads(self.store.get(key))
            host = environment.pop("host")
            label = host if host not in found else f"{host}#{sum(k.split('#')[0] == host for k in found) + 1}"
            found[label] = environment
        return found

    def close(self) -> None:
        """End the run for every joined node, and give them a moment to hear it before the store goes."""
        self.store.set(f"next/{self._announced}", END)
        deadline = time.monotonic() + LEAVE_SECONDS
        while self.store.add(LEFT, 0) < self.store.add(JOINED, 0) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS / 2)


def join(endpoint: Endpoint, wait: float, say=print) -> int:
    """``cnnbench join``: serve the run whose controller listens at ``endpoint`` until it ends.
    Returns 0 when the controller ends the run, 1 when it went away first."""
    from cnnbench.machine.environment import fingerprint

    try:
        store = dist.TCPStore(endpoint.host, endpoint.port, timeout=timedelta(seconds=wait))
    except (RuntimeError, TimeoutError):
        say(f"cnnbench join: no controller answered at {endpoint} within {wait:g} s")
        return 1
    environment = {"host": socket.gethostname(), **fingerprint(), "network": network()}
    node = store.add(JOINED, 1) - 1
    store.set(f"nodes/{node}", json.dumps(environment))
    say(f"cnnbench join: joined the run at {endpoint} as node {node + 1} (ranks talk over {endpoint.interface()})")
    agents: dict[str, subprocess.Popen] = {}
    announced = 0
    try:
        while True:
            if store.check([f"next/{announced}"]):
                group = store.get(f"next/{announced}").decode()
                announced += 1
                if group == END:
                    store.add(LEFT, 1)
                    say("cnnbench join: the controller ended the run")
                    return 0
                agents[group] = start_agent(endpoint, group)
            for group, agent in list(agents.items()):
                if agent.poll() is not None:
                    del agents[group]
                elif store.check([f"{group}/stop"]):
                    agent.terminate()
            time.sleep(POLL_SECONDS)
    except RuntimeError as error:  # the store's connection: the controller is gone
        say(f"cnnbench join: lost the controller at {endpoint} ({str(error).splitlines()[0]}); stopping")
        return 1
    finally:
        for agent in agents.values():
            agent.terminate()
        for agent in agents.values():
            agent.wait()


def start_agent(endpoint: Endpoint, group: str) -> subprocess.Popen:
    """This node's elastic agent for ``group``, bound to this process: it dies with it."""
    env = {**os.environ, PARENT_PID: str(os.getpid())}
    return subprocess.Popen([sys.executable, *agent_argv(endpoint, group)], env=env)


def agent_argv(endpoint: Endpoint, group: str) -> tuple[str, ...]:
    return ("-m", "cnnbench.ranks.agent", str(endpoint), group)
