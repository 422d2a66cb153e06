"""The environment fingerprint: nvidia-smi parsing, hardware classes, and what changed."""

import subprocess
import sys

import pytest

from cnnbench import environment
from cnnbench.environment import differences, fingerprint, hardware_class, parse_matrix

# The layouts nvidia-smi prints (header cells and rows tab-separated, a legend after a blank line).
TOPOLOGY = (
    "\tGPU0\tGPU1\tGPU2\tNIC0\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\n"
    "GPU0\t X \tNV18\tSYS\tPXB\t0-47\t0\t\tN/A\n"
    "GPU1\tNV18\t X \tSYS\tPXB\t0-47\t0\t\tN/A\n"
    "GPU2\tSYS\tSYS\t X \tSYS\t48-95\t1\t\tN/A\n"
    "NIC0\tPXB\tPXB\tSYS\t X \n"
    "\nLegend:\n\n  X    = Self\n  SYS  = Connection traversing PCIe as well as the SMP interconnect\n"
)
P2P = " \tGPU0\tGPU1\t\n GPU0\tX\tOK\t\n GPU1\tOK\tX\t\n\nLegend:\n\n  X    = Self\n  OK   = Status Ok\n"
QUERY = (
    "0, NVIDIA H200, 143771, 9.0, GPU-aaaa1111-0000-0000-0000-000000000000, 560.35.03\n"
    "1, NVIDIA H200, 143771, 9.0, GPU-bbbb2222-0000-0000-0000-000000000000, 560.35.03\n"
)
ODD = "0, Board, rev 2, [N/A], 8.6, GPU-cccc3333-0000-0000-0000-000000000000, 535.54.03\n"


def test_topology_and_peer_matrices_keep_the_gpu_part():
    assert parse_matrix(TOPOLOGY) == {
        "GPU0": {"GPU0": "X", "GPU1": "NV18", "GPU2": "SYS"},
        "GPU1": {"GPU0": "NV18", "GPU1": "X", "GPU2": "SYS"},
        "GPU2": {"GPU0": "SYS", "GPU1": "SYS", "GPU2": "X"},
    }
    assert parse_matrix(P2P) == {"GPU0": {"GPU0": "X", "GPU1": "OK"}, "GPU1": {"GPU0": "OK", "GPU1": "X"}}
    assert parse_matrix("") == {}


def fake_nvidia_smi(monkeypatch):
    outputs = {"--query-gpu": QUERY, "topo -m": TOPOLOGY, "topo -p2p r": P2P}

    def nvidia_smi(*args):
        return next(output for command, output in outputs.items() if command in " ".join(args))

    monkeypatch.setattr(environment, "_nvidia_smi", nvidia_smi)


def test_gpus_driver_and_matrices_from_nvidia_smi(monkeypatch):
    fake_nvidia_smi(monkeypatch)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    env = fingerprint()
    assert env["driver"] == "560.35.03"
    assert env["gpus"][1] == {
        "index": 1,
        "name": "NVIDIA H200",
        "memory_mib": 143771,
        "capability": "9.0",
        "uuid": "GPU-bbbb2222-0000-0000-0000-000000000000",
    }
    assert env["topology"]["GPU0"]["GPU1"] == "NV18" and env["p2p"]["GPU1"]["GPU0"] == "OK"
    assert hardware_class(env, "cuda") == "cuda-2xNVIDIA_H200"


def test_a_comma_in_the_name_and_unknown_memory_are_read(monkeypatch):
    monkeypatch.setattr(environment, "_nvidia_smi", lambda *args: ODD if "--query-gpu" in args[0] else "")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    (gpu,) = fingerprint()["gpus"]
    assert (gpu["name"], gpu["memory_mib"], gpu["capability"]) == ("Board, rev 2", None, "8.6")


@pytest.mark.parametrize(("visible", "indices"), [("1", [1]), ("GPU-bbbb", [1]), ("1,0", [1, 0]), ("", [])])
def test_cuda_visible_devices_narrows_the_gpus(monkeypatch, visible, indices):
    fake_nvidia_smi(monkeypatch)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert [gpu["index"] for gpu in fingerprint()["gpus"]] == indices


def test_without_gpus_the_keys_are_there_and_empty(monkeypatch):
    monkeypatch.setattr(environment, "_nvidia_smi", lambda *args: "")
    env = fingerprint()
    assert set(env) == {"python", "torch", "torchvision", "cuda", "cudnn", "nccl", "driver", "gpus"} | {
        "topology",
        "p2p",
        "cpu",
    }
    assert (env["driver"], env["gpus"], env["topology"], env["p2p"]) == (None, [], {}, {})
    assert env["cpu"]["cores"] >= 1 and env["cpu"]["model"]
    assert hardware_class(env, "cpu").startswith(f"cpu-{env['cpu']['cores']}x")


def test_a_missing_nvidia_smi_reads_as_no_gpus(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert environment._nvidia_smi("-L") == ""


def test_differences_name_each_changed_key():
    old = {"driver": "550.54.15", "nccl": "2.20.5", "gpus": [{"name": "A"}, {"name": "B"}], "topology": {}}
    new = {"driver": "560.35.03", "nccl": "2.21.5", "gpus": [{"name": "A"}], "topology": {}}
    assert differences(old, new) == [
        "driver 550.54.15 -> 560.35.03",
        "gpus.1.name B -> (none)",
        "nccl 2.20.5 -> 2.21.5",
    ]
    assert differences(new, new) == []


def test_without_nvidia_smi_the_gpus_come_from_torch_in_a_subprocess(monkeypatch):
    """A container with CUDA but no nvidia-smi still gets a hardware class per GPU model."""
    monkeypatch.setattr(environment, "_nvidia_smi", lambda *args: "")
    monkeypatch.setattr(environment.torch.cuda, "device_count", lambda: 2)
    seen = []

    def run(argv, **kwargs):
        seen.append(argv)
        found = '[["NVIDIA H200", "9.0", 143771], ["NVIDIA L4", "8.9", 22491]]'
        return subprocess.CompletedProcess(argv, 0, stdout=found)

    monkeypatch.setattr(environment.subprocess, "run", run)
    env = fingerprint()
    assert seen and seen[0][0] == sys.executable  # this process never initializes CUDA
    assert [g["name"] for g in env["gpus"]] == ["NVIDIA H200", "NVIDIA L4"]
    assert hardware_class(env, "cuda") == "cuda-1xNVIDIA_H200-1xNVIDIA_L4"
    monkeypatch.setattr(environment.subprocess, "run", lambda argv, **kwargs: (_ for _ in ()).throw(OSError()))
    assert fingerprint()["gpus"] == []  # neither source: no GPUs, and the class says cuda-none
