"""The environment fingerprint: NVML through a stand-in pynvml, nvidia-smi parsing, hardware
classes, and what changed."""

import json
import subprocess
import sys
import types

import pytest

from cnnbench.machine import environment
from cnnbench.machine.environment import differences, fingerprint, hardware_class, parse_matrix
from cnnbench.machine.nvml import clocks_event_reasons

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


@pytest.fixture(autouse=True)
def no_nvml(monkeypatch):
    """pynvml absent unless a test puts its stand-in in place: a machine with nvidia-ml-py and a
    GPU reads the nvidia-smi tests' GPUs from NVML otherwise."""
    monkeypatch.setitem(sys.modules, "pynvml", None)


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
    assert env["pcie_path"] == {}  # NVML's alone
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
        "pcie_path",
        "cpu",
    }
    assert (env["driver"], env["gpus"], env["topology"], env["p2p"], env["pcie_path"]) == (None, [], {}, {}, {})
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


def test_a_field_one_side_never_recorded_is_one_line_not_one_per_gpu():
    """A baseline saved before NVML fields existed, or a run without NVML."""
    nvml = {"pcie_link": {"current": "gen5 x16"}, "ecc": "on"}
    old = {"driver": "1", "gpus": [{"name": "A"}, {"name": "A"}]}
    new = {
        "driver": "1",
        "gpus": [{"name": "A", **nvml}, {"name": "A", **nvml}],
        "pcie_path": {"GPU0": {"GPU1": "PIX"}},
    }
    assert differences(old, new) == [
        "not recorded by the baseline: gpus.*.ecc, gpus.*.pcie_link.current, pcie_path.GPU*.GPU*"
    ]
    assert differences(new, old) == [
        "not recorded by this run: gpus.*.ecc, gpus.*.pcie_link.current, pcie_path.GPU*.GPU*"
    ]


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


# NVML, through a stand-in for pynvml with the functions and constants of nvidia-ml-py.
REFUSED = "refused"  # a query NVML answers with an error, e.g. NVML_ERROR_NOT_SUPPORTED


class NVMLError(Exception):
    pass


def h200(index: int, **changes) -> dict:
    """What NVML says of one H200 at rest: every field answered."""
    uuid = ["GPU-aaaa1111-0000-0000-0000-000000000000", "GPU-bbbb2222-0000-0000-0000-000000000000"][index]
    gpu = {
        "index": index,
        "name": "NVIDIA H200",
        "uuid": uuid,
        "memory": 143771 << 20,
        "capability": (9, 0),
        "pcie": (5, 16),
        "pcie_max": (5, 16),
        "nvlink": [1] * 18,
        "power_mw": 700000,
        "clocks": 0x1,  # idle
        "persistence": 1,
        "ecc": [1, 1],
    }
    return gpu | changes


class FakeNvml(types.ModuleType):
    """A stand-in for pynvml: handles are the GPUs' dicts; a field set to REFUSED raises NVMLError."""

    NVML_NVLINK_MAX_LINKS = 36
    NVML_FEATURE_ENABLED = 1
    NVMLError = NVMLError

    def __init__(self, gpus, p2p=None, refuse_init=False, event_reasons_known=True):
        super().__init__("pynvml")
        self.gpus, self.p2p, self.refuse_init = gpus, p2p or {}, refuse_init
        self.event_reasons_known = event_reasons_known  # older drivers know only the Throttle name
        self.started = self.stopped = 0

    @staticmethod
    def _field(handle, key):
        if handle[key] == REFUSED:
            raise NVMLError(3)
        return handle[key]

    def nvmlInit(self):
        if self.refuse_init:
            raise NVMLError(9)  # NVML_ERROR_DRIVER_NOT_LOADED
        self.started += 1

    def nvmlShutdown(self):
        self.stopped += 1

    def nvmlSystemGetDriverVersion(self):
        return "560.35.03"

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index):
        return self.gpus[index]

    def nvmlDeviceGetName(self, handle):
        return self._field(handle, "name")

    def nvmlDeviceGetUUID(self, handle):
        return self._field(handle, "uuid")

    def nvmlDeviceGetMemoryInfo(self, handle):
        return types.SimpleNamespace(total=self._field(handle, "memory"), free=0, used=0)

    def nvmlDeviceGetCudaComputeCapability(self, handle):
        return self._field(handle, "capability")

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle):
        return self._field(handle, "pcie")[0]

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle):
        return self._field(handle, "pcie")[1]

    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle):
        return self._field(handle, "pcie_max")[0]

    def nvmlDeviceGetMaxPcieLinkWidth(self, handle):
        return self._field(handle, "pcie_max")[1]

    def nvmlDeviceGetNvLinkState(self, handle, link):
        links = self._field(handle, "nvlink")
        if link >= len(links):
            raise NVMLError(2)  # NVML_ERROR_INVALID_ARGUMENT: no such link on this GPU
        return links[link]

    def nvmlDeviceGetPowerManagementLimit(self, handle):
        return self._field(handle, "power_mw")

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
        if not self.event_reasons_known:
            raise NVMLError(13)  # NVML_ERROR_FUNCTION_NOT_FOUND
        return self._field(handle, "clocks")

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle):
        return self._field(handle, "clocks")

    def nvmlDeviceGetPersistenceMode(self, handle):
        return self._field(handle, "persistence")

    def nvmlDeviceGetEccMode(self, handle):
        return self._field(handle, "ecc")

    def nvmlDeviceGetTopologyCommonAncestor(self, a, b):
        return 50  # NVML_TOPOLOGY_SYSTEM

    def nvmlDeviceGetP2PStatus(self, a, b, index):
        assert index == 0  # NVML_P2P_CAPS_INDEX_READ, as an int
        status = self.p2p.get((a["index"], b["index"]), 0)
        if status == REFUSED:
            raise NVMLError(3)
        return status


def use_nvml(monkeypatch, fake: FakeNvml | None) -> FakeNvml | None:
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return fake


def fingerprint_with(monkeypatch, fake: FakeNvml | None) -> dict:
    """The fingerprint with ``fake`` as pynvml; None: pynvml not installed."""
    use_nvml(monkeypatch, fake)
    return fingerprint()


def test_two_gpus_with_every_field_read_through_nvml(monkeypatch):
    fake_nvidia_smi(monkeypatch)  # the topology still comes from nvidia-smi: NVLink counts are its alone
    nvml = use_nvml(monkeypatch, FakeNvml([h200(0), h200(1)]))
    env = fingerprint()
    assert env["driver"] == "560.35.03"
    assert env["gpus"][1] == {
        "index": 1,
        "name": "NVIDIA H200",
        "memory_mib": 143771,
        "capability": "9.0",
        "uuid": "GPU-bbbb2222-0000-0000-0000-000000000000",
        "pcie_link": {"current": "gen5 x16", "max": "gen5 x16"},
        "nvlink": {"links": 18, "up": 18},
        "power_limit_w": 700,
        "clocks_event_reasons": "none",  # idle is no cause
        "persistence_mode": "on",
        "ecc": "on",
    }
    assert env["p2p"] == {"GPU0": {"GPU0": "X", "GPU1": "OK"}, "GPU1": {"GPU0": "OK", "GPU1": "X"}}
    assert env["pcie_path"] == {"GPU0": {"GPU0": "X", "GPU1": "SYS"}, "GPU1": {"GPU0": "SYS", "GPU1": "X"}}
    assert env["topology"]["GPU0"]["GPU1"] == "NV18"
    assert hardware_class(env, "cuda") == "cuda-2xNVIDIA_H200"
    assert json.loads(json.dumps(env)) == env  # saved in machine_info as it is
    assert (nvml.started, nvml.stopped) == (1, 1)
    # the keys older versions saved read the same from NVML as from nvidia-smi: old baselines still compare
    from_nvml = env
    monkeypatch.setitem(sys.modules, "pynvml", None)
    from_smi = fingerprint()
    assert [{key: gpu[key] for key in from_smi["gpus"][0]} for gpu in from_nvml["gpus"]] == from_smi["gpus"]
    assert (from_nvml["driver"], from_nvml["p2p"]) == (from_smi["driver"], from_smi["p2p"])


def test_the_diff_names_what_explains_a_scaling_loss(monkeypatch):
    fake_nvidia_smi(monkeypatch)
    use_nvml(monkeypatch, FakeNvml([h200(0), h200(1)]))
    before = fingerprint()
    degraded = [
        h200(0, pcie=(4, 8), clocks=0x1 | 0x8, ecc=[0, 0]),
        h200(1, nvlink=[1] * 12 + [0] * 6, power_mw=500000, persistence=0),
    ]
    use_nvml(monkeypatch, FakeNvml(degraded, p2p={(0, 1): 5, (1, 0): 5}))
    assert differences(before, fingerprint()) == [
        "gpus.0.clocks_event_reasons none -> hw_slowdown",
        "gpus.0.ecc on -> off",
        "gpus.0.pcie_link.current gen5 x16 -> gen4 x8",
        "gpus.1.nvlink.up 18 -> 12",
        "gpus.1.persistence_mode on -> off",
        "gpus.1.power_limit_w 700 -> 500",
        "p2p.GPU0.GPU1 OK -> NS",
        "p2p.GPU1.GPU0 OK -> NS",
    ]


def test_a_query_nvml_refuses_reads_as_null(monkeypatch):
    """NVLink refused (a PCIe board), ECC (a consumer card), the power limit and max link: each
    null, the rest read, no crash."""
    fake_nvidia_smi(monkeypatch)
    board = h200(0, name="NVIDIA L4", nvlink=REFUSED, ecc=REFUSED, power_mw=REFUSED, pcie_max=REFUSED)
    env = fingerprint_with(monkeypatch, FakeNvml([board, h200(1)], p2p={(0, 1): REFUSED}))
    gpu = env["gpus"][0]
    assert gpu["nvlink"] == {"links": None, "up": None}
    assert (gpu["ecc"], gpu["power_limit_w"], gpu["pcie_link"]) == (None, None, {"current": "gen5 x16", "max": None})
    assert (gpu["name"], gpu["persistence_mode"]) == ("NVIDIA L4", "on")  # the rest is read
    assert env["p2p"]["GPU0"]["GPU1"] is None and env["p2p"]["GPU1"]["GPU0"] == "OK"
    assert hardware_class(env, "cuda") == "cuda-1xNVIDIA_L4-1xNVIDIA_H200"


def test_an_older_pynvml_and_driver_are_read_too(monkeypatch):
    """Names as bytes; clock reasons known only by their Throttle name."""
    fake_nvidia_smi(monkeypatch)
    gpus = [h200(i, name=b"NVIDIA H200", uuid=h200(i)["uuid"].encode(), clocks=0x1 | 0x4) for i in range(2)]
    env = fingerprint_with(monkeypatch, FakeNvml(gpus, event_reasons_known=False))
    assert env["gpus"][0]["name"] == "NVIDIA H200" and env["gpus"][1]["uuid"].startswith("GPU-bbbb")
    assert env["gpus"][0]["clocks_event_reasons"] == "sw_power_cap"


@pytest.mark.parametrize("nvml", [None, FakeNvml([], refuse_init=True)], ids=["pynvml missing", "nvmlInit fails"])
def test_without_nvml_the_gpus_come_from_nvidia_smi_as_before(monkeypatch, nvml):
    fake_nvidia_smi(monkeypatch)
    expected = fingerprint()  # the autouse fixture: no pynvml
    assert "pcie_link" not in expected["gpus"][0] and expected["p2p"]["GPU0"]["GPU1"] == "OK"
    assert fingerprint_with(monkeypatch, nvml) == expected


def test_a_gpu_nvml_cannot_name_leaves_the_reading_to_nvidia_smi(monkeypatch):
    fake_nvidia_smi(monkeypatch)
    nvml = FakeNvml([h200(0), h200(1, name=REFUSED)])
    env = fingerprint_with(monkeypatch, nvml)
    assert [gpu["name"] for gpu in env["gpus"]] == ["NVIDIA H200"] * 2 and "pcie_link" not in env["gpus"][0]
    assert (nvml.started, nvml.stopped) == (1, 1)


@pytest.mark.parametrize(("visible", "indices"), [("1", [1]), ("GPU-bbbb", [1]), ("1,0", [1, 0]), ("", [])])
def test_cuda_visible_devices_narrows_the_gpus_nvml_reads(monkeypatch, visible, indices):
    fake_nvidia_smi(monkeypatch)
    use_nvml(monkeypatch, FakeNvml([h200(0), h200(1)]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    env = fingerprint()
    assert [gpu["index"] for gpu in env["gpus"]] == indices
    assert set(env["p2p"]) == ({"GPU0", "GPU1"} if indices else set())  # the machine's pairs, as nvidia-smi's


@pytest.mark.parametrize(
    ("mask", "reasons"),
    [
        (0x0, "none"),
        (0x1, "none"),
        (0x1 | 0x8, "hw_slowdown"),
        (0x4 | 0x40, "sw_power_cap,hw_thermal_slowdown"),
        (0x1 | 0x10000, "0x10000"),
    ],
)
def test_clocks_event_reasons_name_the_causes_and_leave_idle_out(mask, reasons):
    assert clocks_event_reasons(mask) == reasons
