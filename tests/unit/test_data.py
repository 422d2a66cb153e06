"""Real data: CIFAR-10 read from disk through a DataLoader, on a tiny set in the real file format."""

import fnmatch
import os
import pickle

import pytest
import torch
from cifar_files import write
from loader_feed import feed
from torchvision.datasets import CIFAR10

from cnnbench.settings.config import OptionError, Settings
from cnnbench.workload.cifar import check, training_set
from cnnbench.workload.data import LoaderBatches

SHORT = ["--cnnbench-steps=1", "--cnnbench-rounds=3", "--cnnbench-warmup=1"]
EXPECTED = "expected cifar-10-batches-py/ with data_batch_1..5, test_batch and batches.meta (CIFAR-10's python version)"


def test_the_tiny_set_is_in_cifar10s_own_format_and_torchvisions_reader_reads_it(tiny_cifar):
    batch = tiny_cifar / "cifar-10-batches-py" / "data_batch_1"
    with pytest.raises(UnicodeDecodeError):  # Python 2 strings, as in the published files
        pickle.loads(batch.read_bytes())
    assert pickle.loads(batch.read_bytes(), encoding="latin1")["data"].shape == (100, 3072)
    with pytest.raises(RuntimeError, match="not found or corrupted"):  # its MD5s are not the published set's
        CIFAR10(tiny_cifar, train=True, download=False)
    images = training_set(str(tiny_cifar))  # torchvision's own reader, its MD5 checks off
    assert isinstance(images, CIFAR10) and len(images) == 500 and len(images.classes) == 10
    image, label = images[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and label in range(10)
    assert check(tiny_cifar) == (500, False)


def test_loader_batches_run_epoch_after_epoch_and_shard_the_set(tiny_cifar):
    images = training_set(str(tiny_cifar))
    batches = LoaderBatches(images, feed())
    first = list(batches.sampler)
    for _ in range(500 // 32):  # the last partial batch is dropped
        x, y = batches.next()
        assert x.shape == (32, 3, 32, 32) and y.shape == (32,)
    assert batches.epoch == 0
    batches.next()
    assert batches.epoch == 1 and list(batches.sampler) != first  # a new epoch, its own shuffle
    shards = [set(LoaderBatches(images, feed(batch=16, rank=r, ranks=2)).sampler) for r in (0, 1)]
    assert not shards[0] & shards[1] and len(shards[0] | shards[1]) == 500


def unsafe(path):
    """A pickle that would run a command when loaded."""

    class Runs:
        def __reduce__(self):
            return os.system, (f"touch {path}.ran",)

    path.write_bytes(pickle.dumps({"data": Runs()}, protocol=2))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: None, "cifar10:{root}/nowhere: no folder {root}/nowhere/cifar-10-batches-py; " + EXPECTED),
        (lambda f: (f / "test_batch").unlink(), "cifar10:{root}: {folder} lacks test_batch; " + EXPECTED),
        (
            lambda f: (f / "data_batch_3").write_bytes((f / "data_batch_3").read_bytes()[:5000]),
            "cifar10:{root}: {folder}/data_batch_3 is not a readable pickle (*); " + EXPECTED,
        ),
        (
            lambda f: unsafe(f / "data_batch_2"),
            "cifar10:{root}: {folder}/data_batch_2 is not a readable pickle (UnpicklingError: it would import "
            "posix.system, which no CIFAR-10 file holds); " + EXPECTED,
        ),
        (
            lambda f: (f / "batches.meta").write_bytes(pickle.dumps({"label_names": ["cat"]})),
            "cifar10:{root}: {folder}/batches.meta holds no list of 10 label names; " + EXPECTED,
        ),
    ],
    ids=["no folder", "a file missing", "truncated", "would run code", "no label names"],
)
def test_a_missing_or_damaged_folder_is_a_one_line_usage_error(suite, tmp_path, damage, message):
    root = write(tmp_path / "set")
    folder = root / "cifar-10-batches-py"
    damage(folder)
    path = root / "nowhere" if "nowhere" in message else root
    result = suite.runpytest(f"--cnnbench-data=cifar10:{path}", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --cnnbench-data: " + message.format(root=root, folder=folder)])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert not list(folder.glob("*.ran"))  # nothing in a file ran


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"data": "imagenet"}, "--cnnbench-data: unknown 'imagenet'; valid: synthetic, cifar10:PATH"),
        ({"data": "cifar10"}, "--cnnbench-data: cifar10 needs the folder that holds its files: cifar10:PATH"),
        ({"data": "synthetic:/data"}, "--cnnbench-data: synthetic reads no folder, got 'synthetic:/data'; valid: *"),
        ({"epochs": "2"}, "--cnnbench-epochs: synthetic data has no epochs; valid: with --cnnbench-data=cifar10:PATH"),
        ({"epochs": "0", "data": "cifar10:{root}"}, "--cnnbench-epochs: got '0'; valid: a whole number >= 1"),
        (
            {"batch_size": "1024", "data": "cifar10:{root}"},
            "--cnnbench-batch-size: a global batch of 1024 on cpu:0 is more than the 500 training images of "
            "cifar10:{root}; valid: at most that",
        ),
    ],
)
def test_data_options_are_checked(tiny_cifar, values, message):
    values = {name.replace("_", "-"): text.format(root=tiny_cifar) for name, text in values.items()}
    with pytest.raises(OptionError) as error:
        Settings.from_values({"devices": "cpu:0", **values})
    assert fnmatch.fnmatchcase(str(error.value), message.format(root=tiny_cifar)), str(error.value)
