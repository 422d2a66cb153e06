"""Sets on several nodes: two "nodes" on this machine, each its own elastic agent, meet through a
c10d rendezvous on 127.0.0.1. The controller (pytest) runs on core 0 and ``cnnbench join`` on
core 1, so each node's ``cpu:0`` is a core of its own."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from faulty_models import DOOMED_NODE
from processes import descendants, listening, ranks

from cnnbench.machine.devices import usable_cores
from cnnbench.machine.environment import differences, hardware_class
from cnnbench.machine.network import local_endpoint, parse_endpoint
from cnnbench.settings.config import Settings
from cnnbench.settings.options import OptionError

TESTS = Path(__file__).parents[1]
CORES = usable_cores()  # before a test narrows this process to the first
pytestmark = pytest.mark.skipif(len(CORES) < 2, reason="needs two cores")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_node(port: int, doomed: bool = False) -> subprocess.Popen:
    """``cnnbench join`` on core 1, its own process group: ``doomed``, faulty_models' kills_its_node
    kills that group (the node) from its rank."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    if doomed:
        env[DOOMED_NODE] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "cnnbench", "join", f"127.0.0.1:{port}", "--wait=120"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {CORES[1]}),
    )


@pytest.fixture
def on_core_0():
    """The controller and the ranks it starts on the first core only: the first node's cpu:0."""
    os.sched_setaffinity(0, {CORES[0]})
    yield
    os.sched_setaffinity(0, CORES)


def agents() -> list[int]:
    """Live cnnbench elastic agents, found through /proc."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"cnnbench.ranks.agent" in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_a_set_on_two_nodes_runs_end_to_end_and_the_other_node_leaves_with_the_run(suite, on_core_0):
    port = free_port()
    node = start_node(port)
    run = suite.runpytest(
        *("--cnnbench-devices=cpu:0 2x cpu:0", "--cnnbench-wrappers=single,ddp", f"--cnnbench-rdzv=127.0.0.1:{port}"),
        *("--cnnbench-models=linear", "--cnnbench-batch-size=8", "--cnnbench-steps=20", "--cnnbench-rounds=3"),
        *("--cnnbench-warmup=5", "--benchmark-autosave", "--cnnbench-timeout=120"),
        "--deselect=test_training.py::test_train[linear-bs8-fp32-ddp-cpu:0]",
    )
    out, _ = node.communicate(timeout=60)
    run.assert_outcomes(passed=2)
    assert node.returncode == 0, out
    assert "joined the run at 127.0.0.1" in out and "the controller ended the run" in out, out
    rendezvous = f"cnnbench: the rendezvous of 2xcpu:0 was at 127.0.0.1:{port} (lo): *"
    run.stdout.fnmatch_lines(["*ddp*2xcpu:0*x*", rendezvous])
    (saved,) = (suite.path / ".benchmarks").glob("cpu-2nodes-*/*/*.json")
    data = json.loads(saved.read_text())
    environment = data["machine_info"]["cnnbench"]
    assert environment["node_count"] == 2 and "lo" in environment["network"]
    (other,) = environment["nodes"].values()
    assert other["torch"] == environment["torch"] and "lo" in other["network"]
    two = next(b for b in data["benchmarks"] if b["param"].endswith("-ddp-2xcpu:0"))
    assert two["extra_info"]["processes"] == 2 and two["extra_info"]["speedup"] > 0
    assert ranks() == [] and agents() == []


def test_a_node_that_never_joins_fails_its_set_in_time_and_leaves_nothing(suite, on_core_0):
    port = free_port()
    start = time.monotonic()
    run = suite.runpytest(
        "-p",
        "faulty_models",
        *("--cnnbench-devices=2x cpu:0", "--cnnbench-wrappers=ddp", f"--cnnbench-rdzv=127.0.0.1:{port}"),
        *("--cnnbench-models=slow_linear", "--cnnbench-steps=1", "--cnnbench-rounds=2", "--cnnbench-warmup=0"),
        "--cnnbench-timeout=8",
    )
    run.assert_outcomes(errors=1)
    run.stdout.fnmatch_lines(
        [
            "*only 1 of the 2 nodes of 2xcpu:0 arrived within 8 s (--cnnbench-timeout); "
            f"on each other node run: cnnbench join 127.0.0.1:{port}*"
        ]
    )
    assert time.monotonic() - start < 60
    assert ranks() == []
    assert agents() == []


def test_a_node_that_dies_mid_round_fails_its_set_and_no_rank_is_left(suite, on_core_0):
    """The other node (its cnnbench join, agent and rank) is killed outright by its own rank at the
    first timed step; before that, every process of the run, on both nodes, listens on 127.0.0.1 alone."""
    port = free_port()
    node = start_node(port, doomed=True)
    seen: dict[str, set] = {}

    def look_while_both_nodes_run() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and node.poll() is None:
            remote = [pid for pid in descendants(node.pid) if pid in ranks()]
            if remote:
                seen["listening"] = listening([os.getpid(), *descendants(os.getpid()), node.pid, *remote])
                return
            time.sleep(0.1)

    looker = threading.Thread(target=look_while_both_nodes_run)
    looker.start()
    run = suite.runpytest(
        "-p",
        "faulty_models",
        *("--cnnbench-devices=2x cpu:0", "--cnnbench-wrappers=ddp", f"--cnnbench-rdzv=127.0.0.1:{port}"),
        *("--cnnbench-models=kills_its_node", "--cnnbench-steps=2", "--cnnbench-rounds=2", "--cnnbench-warmup=1"),
        *("--cnnbench-batch-size=4", "--cnnbench-timeout=60"),
    )
    looker.join()
    node.communicate()
    assert node.returncode == -signal.SIGKILL
    run.assert_outcomes(failed=1)
    run.stdout.fnmatch_lines(["*WorkerError: *rank 0 failed (exit code 1): *; 1 node(s) sent no report: *died*"])
    assert ranks() == [] and agents() == []
    assert seen["listening"] and seen["listening"] <= {"127.0.0.1"}, seen["listening"]


def test_a_set_on_several_nodes_has_one_controller(suite):
    run = suite.runpytest("-n", "2", "--benchmark-disable", "--cnnbench-devices=2xcpu:0", "--cnnbench-rdzv=127.0.0.1:1")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    run.stderr.fnmatch_lines(["*a set across nodes has one controller, which hosts 127.0.0.1:1; valid: without -n*"])


def test_a_rendezvous_without_a_set_across_nodes_says_nothing_listened_there(suite):
    run = suite.runpytest("--cnnbench-devices=cpu:0", "--cnnbench-rdzv=127.0.0.1:1", "--collect-only")
    assert run.ret == pytest.ExitCode.OK
    run.stdout.fnmatch_lines(["cnnbench: no set spans nodes, so nothing listened on 127.0.0.1:1"])


def test_a_set_on_several_nodes_needs_a_rendezvous_on_this_machine():
    with pytest.raises(OptionError, match=r"2xcpu:0 spans 2 nodes; valid: with --cnnbench-rdzv=HOST:PORT"):
        Settings.from_values({"devices": "cpu:0 2x cpu:0"})
    with pytest.raises(OptionError, match=r"--cnnbench-rdzv: 192\.0\.2\.77 is not an address of this machine"):
        Settings.from_values({"devices": "2xcpu:0", "rdzv": "192.0.2.77:29400"})
    settings = Settings.from_values({"devices": "cpu:0 2x cpu:0", "rdzv": "127.0.0.1:29400", "wrappers": "dp,ddp"})
    assert settings.nodes == 2 and settings.threads_per_device == len(CORES)  # one device per node
    reasons = {f"{case.wrapper}-{case.devices}": case.unavailable() for case in settings.cases()}
    assert reasons["dp-2xcpu:0"] == "dp runs in one process: it cannot span the nodes of 2xcpu:0"
    assert reasons["ddp-2xcpu:0"] is None
    (two,) = [case for case in settings.cases() if case.devices.nodes == 2 and case.wrapper == "ddp"]
    assert str(two.reference.devices) == "cpu:0" and str(two.local(1).devices) == "cpu:0"
    assert two.devices.devices == ["cpu:0", "cpu:0"] and two.processes == 2


@pytest.mark.parametrize("text", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":29400", "no-such-host.invalid:1"])
def test_a_bad_rendezvous_endpoint_says_what_is_valid(text):
    with pytest.raises(ValueError, match=r"got '.*'"):
        parse_endpoint(text)


def test_the_rendezvous_is_on_an_own_address_and_the_class_counts_nodes():
    assert str(local_endpoint("localhost:29400")) == "127.0.0.1:29400"
    environment = {"cpu": {"cores": 2, "model": "Xeon"}, "gpus": []}
    assert hardware_class(environment, "cpu") == "cpu-2xXeon"
    assert hardware_class({**environment, "node_count": 2}, "cpu") == "cpu-2nodes-2xXeon"
    before = {
        "driver": "550.54.15",
        "nodes": {"gpu-b": {"driver": "550.54.15", "network": {"ib0": {"speed": "200000"}}}},
    }
    after = {
        "driver": "550.54.15",
        "nodes": {"gpu-b": {"driver": "560.35.03", "network": {"ib0": {"speed": "100000"}}}},
    }
    assert differences(before, after) == [
        "nodes.gpu-b.driver 550.54.15 -> 560.35.03",
        "nodes.gpu-b.network.ib0.speed 200000 -> 100000",
    ]


def test_join_waits_for_its_controller_and_leaves_when_it_goes_away():
    from cnnbench.machine.network import Endpoint
    from cnnbench.ranks.nodes import Nodes

    port = free_port()
    alone = subprocess.run(
        [sys.executable, "-m", "cnnbench", "join", f"127.0.0.1:{port}", "--wait=1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert alone.returncode == 1 and f"no controller answered at 127.0.0.1:{port} within 1 s" in alone.stdout
    nodes = Nodes(Endpoint("127.0.0.1", port), timeout=30)
    node = start_node(port)
    assert "joined the run" in node.stdout.readline()
    del nodes  # the controller's store goes away with it, as when pytest is killed
    out, _ = node.communicate(timeout=30)
    assert node.returncode == 1 and f"lost the controller at 127.0.0.1:{port}" in out, out
