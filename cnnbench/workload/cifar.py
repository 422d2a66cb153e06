"""CIFAR-10 as torchvision reads it from disk: a folder's check, and the training set with the usual
augmentation.

cnnbench checks a folder itself, once, in the controller, when the option is read: every file is
there and unpickles into what CIFAR-10 holds, through an unpickler that admits numpy arrays and
nothing else (a file that would import anything more is refused before torchvision's own
``pickle.load`` in the ranks meets it), and each file's MD5 is compared with the published set's.
The ranks then read the folder with torchvision's own reader, its MD5 checks off: a copy of your
own or a test set trains too, and the run says whether it was the published set.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar

from torch.utils.data import Dataset
from torchvision import transforms
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import check_md5

FOLDER = CIFAR10.base_folder  # cifar-10-batches-py
TRAIN = [name for name, _ in CIFAR10.train_list]  # data_batch_1..5
TEST = [name for name, _ in CIFAR10.test_list]
META = CIFAR10.meta["filename"]  # batches.meta
PUBLISHED_MD5 = {name: md5 for name, md5 in CIFAR10.train_list + CIFAR10.test_list} | {META: CIFAR10.meta["md5"]}
EXPECTED = f"{FOLDER}/ with {TRAIN[0]}..{TRAIN[-1][-1]}, {', '.join(TEST)} and {META} (CIFAR-10's python version)"
IMAGE_BYTES = 3 * 32 * 32
CLASSES = 10
# The training set's per-channel mean and standard deviation, as widely published for CIFAR-10.
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


class Cifar10Folder(CIFAR10):
    """torchvision's CIFAR-10 reader with its MD5 checks off: with no MD5 its ``check_integrity``
    checks only that each file exists, and ``check`` has read every file already."""

    train_list: ClassVar = [[name, None] for name in TRAIN]
    test_list: ClassVar = [[name, None] for name in TEST]
    meta: ClassVar = {**CIFAR10.meta, "md5": None}


def training_set(root: str, reader: type[CIFAR10] = Cifar10Folder) -> Dataset:
    """The training images at ``root`` with the usual CIFAR augmentation; never downloaded."""
    augment = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ]
    )
    return reader(root, train=True, download=False, transform=augment)


def check(root: Path) -> tuple[int, bool]:
    """The training images of the CIFAR-10 folder under ``root``, and whether every file is the
    published set's (by MD5). A ValueError says what is wrong and what was expected."""
    folder = root / FOLDER
    if not folder.is_dir():
        raise ValueError(f"no folder {folder}; expected {EXPECTED}")
    missing = [name for name in [*TRAIN, *TEST, META] if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"{folder} lacks {', '.join(missing)}; expected {EXPECTED}")
    images = sum(_batch(folder / name) for name in TRAIN)
    _batch(folder / TEST[0])
    names = _load(folder / META)
    if not isinstance(names, dict) or len(names.get(CIFAR10.meta["key"]) or ()) != CLASSES:
        raise ValueError(f"{folder / META} holds no list of {CLASSES} label names; expected {EXPECTED}")
    return images, all(check_md5(folder / name, md5) for name, md5 in PUBLISHED_MD5.items())


def _batch(path: Path) -> int:
    """The images in one batch file; a ValueError says how it is not a CIFAR-10 batch."""
    entry = _load(path)
    data = entry.get("data") if isinstance(entry, dict) else None
    labels = entry.get("labels") if isinstance(entry, dict) else None
    shape = getattr(data, "shape", None)
    if getattr(data, "dtype", None) != "uint8" or len(shape or ()) != 2 or shape[1] != IMAGE_BYTES:
        raise ValueError(f"{path} holds no 'data' array of uint8 (N, {IMAGE_BYTES}); expected {EXPECTED}")
    if not isinstance(labels, list) or len(labels) != shape[0] or not all(label in range(CLASSES) for label in labels):
        raise ValueError(f"{path} holds no 'labels' list of {shape[0]} classes 0..{CLASSES - 1}; expected {EXPECTED}")
    return shape[0]


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts, lists, numbers, strings and numpy arrays; any other import is refused."""

    ADMITTED: ClassVar = {
        ("numpy.core.multiarray", "_reconstruct"),  # numpy 1.x's name, in the published files
        ("numpy._core.multiarray", "_reconstruct"),  # numpy 2's
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # raw bytes in a protocol 2 pickle written by Python 3
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ADMITTED:
            raise pickle.UnpicklingError(f"it would import {module}.{name}, which no CIFAR-10 file holds")
        return super().find_class(module, name)


def _load(path: Path) -> Any:
    try:
        with open(path, "rb") as file:
            return _ArraysOnly(file, encoding="latin1").load()  # as torchvision reads it
    except Exception as error:  # a damaged file raises whatever the byte it stops at makes of it
        why = " ".join(str(error).split()) or "no detail"
        what = f"{type(error).__name__}: {why}"
        raise ValueError(f"{path} is not a readable pickle ({what}); expected {EXPECTED}") from None
