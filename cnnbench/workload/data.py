"""What a rank trains on: ``Batches`` from a data kind, by name (``--cnnbench-data``).

``synthetic`` (the default) is one seeded batch made on the device before the clock starts: the
step alone. ``cifar10:PATH`` reads CIFAR-10's training set through a DataLoader, as training
does: augmentation in loader workers, a DistributedSampler shard per rank (one loader of the
whole global batch for single-process wrappers), pinned memory on CUDA, a copy to the device per
step. Its iterator lives on across rounds; when it runs out, the next epoch starts. Adding a data
kind is one ``register_data`` call, in this module or a user's own: ranks import its module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from cnnbench.machine.lifeline import killed_with_parent

PREFETCH = 2  # batches each loader worker keeps ready (DataLoader's default)


@dataclass(frozen=True)
class DataSource:
    """The data a run trains on, as checked when the option was read."""

    kind: str = "synthetic"
    path: str = ""  # the folder read, absolute; "" where nothing is read
    train_images: int = 0  # in its training set
    published: bool = False  # every file is the published set's, by checksum

    @property
    def reads(self) -> bool:
        """Read from a data set through a loader (with epochs), not made on the device."""
        return bool(self.path)

    def __str__(self) -> str:
        return f"{self.kind}:{self.path}" if self.reads else self.kind

    def describe(self) -> str:
        which = "the published set (checksums match)" if self.published else "not the published set (checksums differ)"
        return f"data: {self}, {self.train_images} training images; {which}"


@dataclass(frozen=True)
class Feed:
    """What one process's batches are made for."""

    batch: int  # images per step in this process
    device: torch.device
    rank: int  # among the processes that load their own share; 0 for a single-process wrapper
    ranks: int
    seed: int
    channels_last: bool
    workers: int  # loader worker processes; 0: the process loads its batches itself
    timeout: float  # seconds a loader worker may take for one batch
    pin_memory: bool = False  # stage batches in page-locked memory (the device kind says)


class Batches(Protocol):
    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next step's images and labels, on the device."""

    def held(self) -> Batches:
        """One batch of these, kept on the device: the same step without the input pipeline."""

    def new_epoch(self) -> None:
        """Start a whole epoch from its first batch (nothing for data without epochs)."""


class SyntheticBatches:
    """The same batch, already on the device, at every step."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.batch = images, labels

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.batch

    def held(self) -> Batches:
        return self

    def new_epoch(self) -> None:
        pass


def synthetic_batch(
    batch_size: int, device: torch.device, seed: int, channels_last: bool = False, num_classes: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded CIFAR-shaped batch, made on ``device`` before any clock starts."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, 32, 32, generator=generator)
    labels = torch.randint(num_classes, (batch_size,), generator=generator)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images.to(device), labels.to(device)


class LoaderBatches:
    """This process's shard of a data set through a DataLoader, epoch after epoch. Every step has
    the full batch (the last partial one of an epoch is dropped). A loader worker that dies fails
    the step at once; one that hangs fails it after ``feed.timeout`` seconds."""

    def __init__(self, dataset: Dataset, feed: Feed):
        self.sampler = DistributedSampler(dataset, num_replicas=feed.ranks, rank=feed.rank, seed=feed.seed)
        self.loader = DataLoader(
            dataset,
            batch_size=feed.batch,
            sampler=self.sampler,
            drop_last=True,
            num_workers=feed.workers,
            pin_memory=feed.pin_memory,
            persistent_workers=feed.workers > 0,
            prefetch_factor=PREFETCH if feed.workers else None,
            timeout=feed.timeout if feed.workers else 0,
            worker_init_fn=_die_with_rank,  # started by the rank, workers share its pinned cores (CPU)
        )
        self.device = feed.device
        self.memory_format = torch.channels_last if feed.channels_last else torch.contiguous_format
        self.epoch = 0
        self._batches = iter(self.loader)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            images, labels = next(self._batches)
        except StopIteration:
            self.new_epoch()
            images, labels = next(self._batches)  # never empty: the global batch is at most the set
        images = images.to(self.device, non_blocking=True, memory_format=self.memory_format)
        return images, labels.to(self.device, non_blocking=True)

    def held(self) -> Batches:
        return SyntheticBatches(*self.next())

    def new_epoch(self) -> None:
        self.epoch += 1
        self.sampler.set_epoch(self.epoch)  # each epoch its own shuffle, the same on every rank
        self._batches = iter(self.loader)


def _die_with_rank(worker_id: int) -> None:
    """A loader worker dies with its rank, even one killed outright (Linux), as ranks die with the
    controller: nothing is left behind, a worker hung in a batch included."""
    killed_with_parent()


@dataclass(frozen=True)
class DataKind:
    """A kind of training data: ``--cnnbench-data=NAME``, or ``NAME:PATH`` where it reads a folder."""

    name: str
    batches: Callable[[DataSource, Feed], Batches]  # in the rank
    # the training images of a folder and whether it is the published set; a ValueError says what
    # is wrong with it. None: the kind reads no folder
    check: Callable[[Path], tuple[int, bool]] | None = None

    @property
    def usage(self) -> str:
        return f"{self.name}:PATH" if self.check else self.name


_KINDS: dict[str, DataKind] = {}


def register_data(kind: DataKind) -> DataKind:
    _KINDS[kind.name] = kind
    return kind


def data_module(name: str) -> str:
    """The module that defines ``name``'s batches: worker processes import it before loading."""
    return _KINDS[name].batches.__module__


def make_batches(source: DataSource, feed: Feed) -> Batches:
    return _KINDS[source.kind].batches(source, feed)


def data_source(text: str) -> DataSource:
    """``synthetic`` or ``cifar10:PATH``, the folder checked; a ValueError says what is wrong."""
    name, colon, path = text.strip().partition(":")
    valid = ", ".join(kind.usage for kind in _KINDS.values())
    if name not in _KINDS:
        raise ValueError(f"unknown {text!r}; valid: {valid}")
    kind = _KINDS[name]
    if kind.check is None:
        if colon:
            raise ValueError(f"{name} reads no folder, got {text!r}; valid: {valid}")
        return DataSource(name)
    if not path.strip():
        raise ValueError(f"{name} needs the folder that holds its files: {kind.usage}")
    folder = Path(path).expanduser().absolute()
    try:
        images, published = kind.check(folder)
    except ValueError as error:
        raise ValueError(f"{text}: {error}") from None
    return DataSource(name, str(folder), images, published)


def _synthetic(source: DataSource, feed: Feed) -> Batches:
    return SyntheticBatches(*synthetic_batch(feed.batch, feed.device, feed.seed + feed.rank, feed.channels_last))


def _cifar10(source: DataSource, feed: Feed) -> Batches:
    from cnnbench.workload import cifar  # with torchvision, whose import takes seconds: only where the set is read

    return LoaderBatches(cifar.training_set(source.path), feed)


def _check_cifar10(folder: Path) -> tuple[int, bool]:
    from cnnbench.workload import cifar

    return cifar.check(folder)


register_data(DataKind("synthetic", _synthetic))
register_data(DataKind("cifar10", _cifar10, check=_check_cifar10))
