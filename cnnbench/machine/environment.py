"""What a result depends on besides the code: library versions, driver, GPUs, interconnect, CPU.

The fingerprint is saved in ``machine_info["cnnbench"]``; its hardware class (GPU models and
count, or CPU model and cores) keys the baseline storage. GPU facts come from NVML where pynvml is
installed (``cnnbench.machine.nvml``), else from ``nvidia-smi``; either way the pytest process never
initializes CUDA. Without GPUs their keys are empty or null.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from collections import Counter
from typing import Any

import torch
import torchvision

from cnnbench.machine import nvml
from cnnbench.machine.devices import DEVICE_KINDS, usable_cores

GPU_FIELDS = ("index", "name", "memory.total", "compute_cap", "uuid", "driver_version")


def _nvidia_smi(*args: str) -> str:
    """nvidia-smi's output, or "" where it is missing, fails or hangs."""
    try:
        done = subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout


def parse_matrix(text: str) -> dict[str, dict[str, str]]:
    """The GPU-by-GPU part of ``nvidia-smi topo -m`` or ``topo -p2p r``: {"GPU0": {"GPU1": "NV18"}}."""
    matrix: dict[str, dict[str, str]] = {}
    columns: list[str] = []
    for line in text.splitlines():
        cells = line.split()
        if not cells:
            continue
        if cells[0].startswith("Legend"):
            break
        if not columns:  # the header: column names only, its first cell blank
            columns = [cell for cell in cells if re.fullmatch(r"GPU\d+", cell)]
        elif re.fullmatch(r"GPU\d+", cells[0]):
            matrix[cells[0]] = dict(zip(columns, cells[1 : 1 + len(columns)], strict=False))
    return matrix


def _visible(gpus: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The GPUs torch will see: CUDA_VISIBLE_DEVICES lists indices or UUIDs, in its own order."""
    wanted = os.environ.get("CUDA_VISIBLE_DEVICES")
    if wanted is None:
        return gpus
    chosen = []
    for entry in filter(None, (e.strip() for e in wanted.split(","))):
        match = [g for g in gpus if entry in (str(g["index"]), g["uuid"]) or g["uuid"].startswith(entry)]
        if not match:
            break  # CUDA stops at the first entry it cannot resolve
        chosen.append(match[0])
    return chosen


def _gpus_from_torch() -> list[dict[str, Any]]:
    """Where nvidia-smi is missing (a container with CUDA but no tools): the GPUs torch sees, read
    in a subprocess so that this process never initializes CUDA."""
    if torch.cuda.device_count() == 0:
        return []
    script = (
        "import json, torch; print(json.dumps([[torch.cuda.get_device_name(i), "
        "'%d.%d' % torch.cuda.get_device_capability(i), torch.cuda.get_device_properties(i).total_memory >> 20] "
        "for i in range(torch.cuda.device_count())]))"
    )
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
        found = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    return [
        {"index": i, "name": name, "memory_mib": memory, "capability": capability, "uuid": None}
        for i, (name, capability, memory) in enumerate(found)
    ]


def _gpus() -> tuple[list[dict[str, Any]], str | None]:
    rows = _nvidia_smi(f"--query-gpu={','.join(GPU_FIELDS)}", "--format=csv,noheader,nounits")
    if not rows.strip():
        return _gpus_from_torch(), None
    gpus, driver = [], None
    for row in rows.strip().splitlines():
        index, rest = row.split(",", 1)
        name, memory, capability, uuid, driver = (cell.strip() for cell in rest.rsplit(",", 4))  # a name may hold ","
        gpus.append(
            {
                "index": int(index),
                "name": name,
                "memory_mib": int(memory) if memory.isdigit() else None,  # "[N/A]" on some boards
                "capability": capability,
                "uuid": uuid,
            }
        )
    return _visible(gpus), driver


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cudnn() -> str | None:
    version = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    if version is None:
        return None
    base = 10000 if version >= 90000 else 1000  # cuDNN 9 packs major * 10000, cuDNN 8 major * 1000
    return f"{version // base}.{version % base // 100}.{version % 100}"


def _nccl() -> str | None:
    if not (torch.version.cuda and torch.distributed.is_nccl_available()):
        return None
    return ".".join(map(str, torch.cuda.nccl.version()))


def fingerprint() -> dict[str, Any]:
    """The environment of this machine, as saved with every run."""
    reading = nvml.read(_visible)
    if reading:
        gpus, driver, p2p, pcie_path = reading.gpus, reading.driver, reading.p2p, reading.pcie_path
    else:
        gpus, driver = _gpus()
        p2p = parse_matrix(_nvidia_smi("topo", "-p2p", "r")) if gpus else {}
        pcie_path = {}  # NVML's alone
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda,
        "cudnn": _cudnn(),
        "nccl": _nccl(),
        "driver": driver,
        "gpus": gpus,
        "topology": parse_matrix(_nvidia_smi("topo", "-m")) if gpus else {},  # NVLink counts: nvidia-smi's alone
        "p2p": p2p,
        "pcie_path": pcie_path,
        "cpu": {"model": _cpu_model(), "cores": len(usable_cores())},
    }


def hardware_class(environment: dict[str, Any], kind: str) -> str:
    """``cuda-3xNVIDIA_H200`` or ``cpu-2xAMD_EPYC``, ``cuda-2nodes-8xNVIDIA_H200`` for a run
    whose sets span two nodes (this node's devices): runs compare only within one class."""
    nodes = environment.get("node_count", 1)
    parts = [f"{nodes}nodes"] if nodes > 1 else []
    if not DEVICE_KINDS[kind].pinned:  # accelerators: the models and their count
        counts = Counter(gpu["name"] for gpu in environment["gpus"])
        parts += [f"{n}x{name}" for name, n in counts.items()] or ["none"]
    else:
        parts += [f"{environment['cpu']['cores']}x{environment['cpu']['model']}"]
    return "-".join([kind, *(re.sub(r"[^A-Za-z0-9.]+", "_", part).strip("_") for part in parts)])


def driver_report(environment: dict[str, Any]) -> str:
    """What the GPU driver reports, as the fingerprint read it (NVML, else nvidia-smi)."""
    gpus, driver = environment.get("gpus") or [], environment.get("driver")
    names = ", ".join(f"{n}x {name}" for name, n in Counter(gpu["name"] for gpu in gpus).items())
    if driver is None:
        if gpus:  # read by torch, in a subprocess
            return f"neither NVML nor nvidia-smi answered; torch names {names}"
        return "neither NVML nor nvidia-smi answered (no NVIDIA driver, or its tools are missing)"
    return f"NVML/nvidia-smi: driver {driver}, {names or 'no GPU'}"


def saved_class(environment: Any, kind: str) -> str:
    """The hardware class of a saved fingerprint; ValueError where it cannot be read."""
    try:
        return hardware_class(environment, kind)
    except (KeyError, TypeError, AttributeError):
        raise ValueError("machine_info.cnnbench is unreadable, so its hardware is unknown") from None


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in items:
        flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def differences(baseline: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """One line per changed key: ``driver 550.54.15 -> 560.35.03``, ``gpus.1.name ... -> (none)``.

    A field that one side has not recorded at all (a baseline saved by an older cnnbench, a run
    without NVML) is one line for all its keys, not a line per GPU or pair."""
    old, new = _flatten(baseline), _flatten(current)
    lines: list[str] = []
    unrecorded: dict[str, set[str]] = {"the baseline": set(), "this run": set()}
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key, "(none)"), new.get(key, "(none)")
        if before == after:
            continue
        lacking = "the baseline" if key not in old else "this run" if key not in new else None
        fields = {_field(k) for k in (old if lacking == "the baseline" else new)}
        if lacking and _field(key) not in fields:
            unrecorded[lacking].add(_field(key))
        else:
            lines.append(f"{key} {before} -> {after}")
    for side, fields in unrecorded.items():
        if fields:
            lines.append(f"not recorded by {side}: {', '.join(sorted(fields))}")
    return lines


def _field(key: str) -> str:
    """A key with its GPU numbers left out: ``gpus.0.nvlink.up`` -> ``gpus.*.nvlink.up``."""
    return re.sub(r"(^|\.)(GPU)?\d+(?=\.|$)", r"\1\2*", key)
