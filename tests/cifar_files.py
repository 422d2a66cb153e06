"""CIFAR-10's python version on disk, written as the published files were, for a set of any size.

``python tests/cifar_files.py FOLDER [IMAGES]`` writes ``FOLDER/cifar-10-batches-py`` with IMAGES
random training images (500 unless given) over ``data_batch_1..5``, a fifth as many in
``test_batch``, and ``batches.meta``: a set in the real format that is not the published set.
"""

from __future__ import annotations

import pickle
import struct
import sys
from pathlib import Path

import numpy as np

LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class Python2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2's cPickle wrote the published files: text and raw bytes as Python 2
    ``str`` (so they read back only with ``encoding="latin1"``), numpy under its 1.x module names."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: str | bytes) -> None:
        raw = obj if isinstance(obj, bytes) else obj.encode("latin1")
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = dispatch[str] = save_py2_str

    def save_global(self, obj, name: str | None = None) -> None:
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)


def dump(obj: object, path: Path) -> None:
    with open(path, "wb") as file:
        Python2Pickler(file, protocol=2).dump(obj)


def batch(label: str, images: int, rng: np.random.Generator) -> dict:
    return {
        "batch_label": label,
        "labels": [int(n) for n in rng.integers(0, 10, images)],
        "data": rng.integers(0, 256, (images, 3072), dtype=np.uint8),
        "filenames": [f"image_{i:05d}.png" for i in range(images)],
    }


def write(root: Path, train_images: int = 500) -> Path:
    """The set under ``root``; returns ``root``."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    per_batch = train_images // 5
    for number in range(1, 6):
        dump(batch(f"training batch {number} of 5", per_batch, rng), folder / f"data_batch_{number}")
    dump(batch("testing batch 1 of 1", per_batch, rng), folder / "test_batch")
    dump({"num_cases_per_batch": per_batch, "label_names": LABEL_NAMES, "num_vis": 3072}, folder / "batches.meta")
    return root


if __name__ == "__main__":
    write(Path(sys.argv[1]), *(int(n) for n in sys.argv[2:3]))
