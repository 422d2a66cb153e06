"""A data kind whose loader worker dies on purpose, added the way a user adds one: ``-p faulty_data``.

``cifar10_worker_dies:PATH`` reads a CIFAR-10 folder as ``cifar10`` does, but the first loader
worker of the session to load an image ends its process with ``os._exit``, as a worker killed by
the kernel's OOM killer or a crash in a native decoder would go; later workers load as usual. A
marker file in the data folder says it happened.
"""

import os
from pathlib import Path

from torch.utils.data import get_worker_info

from cnnbench.workload.cifar import Cifar10Folder, check, training_set
from cnnbench.workload.data import DataKind, DataSource, Feed, LoaderBatches, register_data

MARKER = "a-loader-worker-died"


class DiesOnce(Cifar10Folder):
    def __getitem__(self, index: int):
        if get_worker_info() is not None:  # in a loader worker, not in the rank itself
            try:
                os.close(os.open(Path(self.root) / MARKER, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                os._exit(3)
        return super().__getitem__(index)


def _dies_once(source: DataSource, feed: Feed) -> LoaderBatches:
    return LoaderBatches(training_set(source.path, DiesOnce), feed)


register_data(DataKind("cifar10_worker_dies", _dies_once, check=check))
