"""cnnbench: a pytest-benchmark suite that times CNN training across device sets and parallel
wrappers and gates CI on multi-device speedup.

The package is built in floors, each importing only the ones below it: ``machine`` (devices,
environment, network), ``workload`` (models, wrappers, data, the step), ``settings`` (options,
cases, the gate), ``results`` (typed results, speedups, verdicts), ``ranks`` (the processes that
train) and ``storage`` (saved runs), ``report`` (what people read), and the faces: ``plugin``
(pytest), ``cli`` (the ``cnnbench`` command), ``bare`` (hand-written reference loops).

The extension points are importable from here; each is loaded when first used, so importing
cnnbench (as pytest does for the plugin in every run) imports no torch::

    from cnnbench import register_model, register_wrapper, Wrapper, register_data, DataKind
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {  # name -> the module that defines it
    "register_model": "cnnbench.workload.models",
    "create_model": "cnnbench.workload.models",
    "list_models": "cnnbench.workload.models",
    "Wrapper": "cnnbench.workload.wrappers",
    "register_wrapper": "cnnbench.workload.wrappers",
    "list_wrappers": "cnnbench.workload.wrappers",
    "DataKind": "cnnbench.workload.data",
    "register_data": "cnnbench.workload.data",
    "Batches": "cnnbench.workload.data",
    "Feed": "cnnbench.workload.data",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'cnnbench' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
