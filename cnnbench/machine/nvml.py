"""GPU facts read through NVML (``nvidia-ml-py``, module ``pynvml``; ``pip install -e ".[gpu]"``).

Per GPU, besides what names it, what most often explains a multi-GPU scaling loss after a driver
upgrade: the PCIe link, NVLink, the power limit, why clocks are held back, persistence mode, ECC;
per pair of GPUs, peer access and the PCIe path. NVML creates no CUDA context, so the pytest
process may read it. A query NVML refuses (NVLink on a PCIe board, ECC on a consumer card) reads
as null; where pynvml is missing or NVML does not start, ``read`` returns None.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

Gpus = list[dict[str, Any]]
Matrix = dict[str, dict[str, str | None]]

# NVML_P2P_CAPS_INDEX_READ; nvidia-ml-py 13.615 defines it as "0," (a tuple, which ctypes cannot pass)
P2P_READ = 0
# NVML's peer-access statuses and PCIe topology levels in the letters of `nvidia-smi topo -p2p r`
# and `topo -m`, so that matrices read through either compare
P2P_STATUS = {0: "OK", 1: "CNS", 2: "GNS", 3: "TNS", 4: "DR", 5: "NS", 6: "U"}
PCIE_PATH = {10: "PIX", 20: "PXB", 30: "PHB", 40: "NODE", 50: "SYS"}
GPU_IDLE = 0x1  # a GPU at rest is idle: a reason clocks are low, not a cause of slowness
CLOCKS_EVENT_REASONS = {
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
    0x200: "board_limit",
    0x400: "reliability",
}


@dataclass(frozen=True)
class Reading:
    driver: str
    gpus: Gpus  # the GPUs the run sees
    p2p: Matrix  # pairs of every GPU the driver shows, as nvidia-smi prints its matrices
    pcie_path: Matrix


def read(select: Callable[[Gpus], Gpus]) -> Reading | None:
    """What NVML says, with ``select`` narrowing the GPUs to those the run sees; None where pynvml
    is missing or NVML does not start."""
    try:
        import pynvml
    except Exception:  # not installed, or broken: nvidia-smi's reading stands
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver, no libnvidia-ml
        return None
    try:
        return _read(pynvml, select)
    except Exception:  # a GPU that will not name itself, or a pynvml unlike the ones known here
        return None
    finally:
        with suppress(Exception):
            pynvml.nvmlShutdown()


def _read(pynvml: Any, select: Callable[[Gpus], Gpus]) -> Reading:
    """Every GPU read, those ``select`` keeps returned; the pairs of all of them."""
    handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    gpus = select([_gpu(pynvml, index, handle) for index, handle in enumerate(handles)])
    if not gpus:
        handles = []  # like nvidia-smi's matrices, which are left out where the run sees no GPU

    def peer_access(a: Any, b: Any) -> str | None:
        return _named(P2P_STATUS, _query(pynvml, "nvmlDeviceGetP2PStatus", a, b, P2P_READ))

    def common_ancestor(a: Any, b: Any) -> str | None:
        return _named(PCIE_PATH, _query(pynvml, "nvmlDeviceGetTopologyCommonAncestor", a, b))

    driver = _text(pynvml.nvmlSystemGetDriverVersion())
    return Reading(driver, gpus, p2p=_matrix(handles, peer_access), pcie_path=_matrix(handles, common_ancestor))


def _gpu(pynvml: Any, index: int, handle: Any) -> dict[str, Any]:
    def query(name: str) -> Any:
        return _query(pynvml, name, handle)

    memory = query("nvmlDeviceGetMemoryInfo")
    capability = query("nvmlDeviceGetCudaComputeCapability")
    power_mw = query("nvmlDeviceGetPowerManagementLimit")
    reasons = query("nvmlDeviceGetCurrentClocksEventReasons")
    if reasons is None:  # the name older pynvml and drivers know
        reasons = query("nvmlDeviceGetCurrentClocksThrottleReasons")
    ecc = query("nvmlDeviceGetEccMode")  # [current, pending]: pending takes effect at the next reboot
    return {
        "index": index,
        "name": _text(pynvml.nvmlDeviceGetName(handle)),  # the hardware class: no name, no NVML reading
        "memory_mib": memory.total >> 20 if memory is not None else None,
        "capability": "{}.{}".format(*capability) if capability is not None else None,
        "uuid": _text(pynvml.nvmlDeviceGetUUID(handle)),
        # An idle GPU may drop its link to a lower generation to save power, so the current link
        # at rest is not by itself a fault: what counts is a change between runs, of either.
        "pcie_link": {
            "current": _link(query("nvmlDeviceGetCurrPcieLinkGeneration"), query("nvmlDeviceGetCurrPcieLinkWidth")),
            "max": _link(query("nvmlDeviceGetMaxPcieLinkGeneration"), query("nvmlDeviceGetMaxPcieLinkWidth")),
        },
        "nvlink": _nvlink(pynvml, handle),
        "power_limit_w": round(power_mw / 1000) if power_mw is not None else None,
        "clocks_event_reasons": clocks_event_reasons(reasons) if reasons is not None else None,
        "persistence_mode": _on_off(query("nvmlDeviceGetPersistenceMode")),
        "ecc": _on_off(ecc[0] if ecc else None),
    }


def _query(pynvml: Any, name: str, *args: Any) -> Any:
    """``pynvml.<name>(*args)``, or None where NVML refuses it (not supported, no permission, a
    driver without the function) or this pynvml lacks it."""
    function = getattr(pynvml, name, None)
    if function is None:
        return None
    try:
        return function(*args)
    except pynvml.NVMLError:
        return None


def _nvlink(pynvml: Any, handle: Any) -> dict[str, int | None]:
    """How many NVLink links NVML reports on this GPU and how many are up; null without NVLink."""
    links = range(pynvml.NVML_NVLINK_MAX_LINKS)
    states = [_query(pynvml, "nvmlDeviceGetNvLinkState", handle, link) for link in links]
    states = [state for state in states if state is not None]  # links past the GPU's own are refused
    if not states:
        return {"links": None, "up": None}
    return {"links": len(states), "up": sum(state == pynvml.NVML_FEATURE_ENABLED for state in states)}


def clocks_event_reasons(mask: int) -> str:
    """The reasons in NVML's bitmask, idle left out: ``none``, ``sw_power_cap,hw_slowdown``."""
    names = [name for bit, name in CLOCKS_EVENT_REASONS.items() if mask & bit]
    unknown = mask & ~GPU_IDLE & ~sum(CLOCKS_EVENT_REASONS)
    return ",".join([*names, *([hex(unknown)] if unknown else [])]) or "none"


def _matrix(handles: list[Any], pair: Callable[[Any, Any], str | None]) -> Matrix:
    return {
        f"GPU{i}": {f"GPU{j}": "X" if i == j else pair(a, b) for j, b in enumerate(handles)}
        for i, a in enumerate(handles)
    }


def _named(names: dict[int, str], value: int | None) -> str | None:
    return None if value is None else names.get(value, str(value))


def _link(generation: int | None, width: int | None) -> str | None:
    """``gen4 x16``; a part NVML refused is left out."""
    parts = [f"gen{generation}" if generation else "", f"x{width}" if width else ""]
    return " ".join(filter(None, parts)) or None


def _on_off(state: int | None) -> str | None:
    return None if state is None else "on" if state else "off"


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value  # older pynvml returns bytes
