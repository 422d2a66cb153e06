"""Real data: CIFAR-10 read from disk through a DataLoader, on a tiny set in the real file format."""

import fnmatch
import json
import os
import pickle
import statistics
import time

import pytest
import torch
from cifar_files import write
from test_faults import workers_of
from torchvision.datasets import CIFAR10

from cnnbench.settings.config import OptionError, Settings
from cnnbench.workload.cifar import check, training_set
from cnnbench.workload.data import Feed, LoaderBatches

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


def feed(**changes) -> Feed:
    fields = {"batch": 32, "device": torch.device("cpu"), "rank": 0, "ranks": 1, "seed": 0}
    fields |= {"channels_last": False, "workers": 0, "timeout": 5.0}
    return Feed(**(fields | changes))


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


class HangsInAWorker(CIFAR10):
    def __getitem__(self, index):
        time.sleep(60)


@pytest.mark.filterwarnings("ignore:.*fork:DeprecationWarning")  # Python 3.12+ on forking a threaded process
def test_a_hung_loader_worker_fails_the_step_after_the_timeout(tiny_cifar):
    from cnnbench.workload.cifar import Cifar10Folder

    hangs = type("Hangs", (HangsInAWorker, Cifar10Folder), {})
    batches = LoaderBatches(training_set(str(tiny_cifar), hangs), feed(workers=1, timeout=1.0))
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"DataLoader timed out after 1\.0 seconds"):
        batches.next()
    assert time.monotonic() - start < 5


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


def test_a_real_data_run_measures_the_loader_the_held_batch_and_an_epoch(suite, tiny_cifar):
    result = suite.runpytest(
        f"--cnnbench-data=cifar10:{tiny_cifar}",
        "--cnnbench-models=linear",
        "--cnnbench-devices=cpu:0 cpu:0,1",
        "--cnnbench-wrappers=single,ddp",
        "--cnnbench-epochs=1",
        "--benchmark-json=out.json",
        *SHORT,
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "test_training.py ... *",
            "linear-bs32-fp32-cifar10",
            "  wrapper  devices  images/s  speedup  * 95% CI  efficiency",
            "  input pipeline (the loader vs the same steps on one batch held on the device):",
            "  wrapper  devices  loader img/s  held img/s  input share  * 95% CI  * epoch  epoch from",
            "  single   cpu:0  * * *%  *..*  * s  1 timed",
            "  ddp      cpu:0  * * *%  *..*  * s  1 timed",
            "  ddp      cpu:0,1  * * *%  *..*  * s  1 timed",
            f"data: cifar10:{tiny_cifar}, 500 training images; not the published set (checksums differ)",
            "note: where a loader has workers, each round starts with the batches they prefetched *",
        ]
    )
    saved = {b["param"]: b["extra_info"] for b in json.loads((suite.path / "out.json").read_text())["benchmarks"]}
    ddp = saved["linear-bs32-fp32-cifar10-ddp-cpu:0,1"]
    assert ddp["reference"] == "linear-bs32-fp32-cifar10-single-cpu:0"  # speedup against a real-data single
    assert (ddp["data"], ddp["train_images"], ddp["published_data"]) == ("cifar10", 500, False)
    assert ddp["loader_workers"] == 0  # one core per device: the rank loads its batches itself
    rounds, held = ddp["round_seconds"], ddp["held_batch_seconds"]
    assert len(held) == len(rounds) == 3
    shares = [(loader - alone) / loader for loader, alone in zip(rounds, held, strict=True)]
    assert ddp["input_share"] == pytest.approx(statistics.median(shares))
    assert ddp["held_batch_images_per_second"] == pytest.approx(32 / statistics.median(held))
    (epoch,) = ddp["timed_epoch_seconds"]
    assert ddp["epoch_seconds"] == epoch > 0
    assert saved["linear-bs32-fp32-cifar10-single-cpu:0"]["loader_workers"] == 0


def test_a_dying_loader_worker_fails_its_configuration_alone_and_quickly(suite, tmp_path):
    root = write(tmp_path)
    start = time.monotonic()
    result = suite.runpytest(
        "-p",
        "faulty_data",
        f"--cnnbench-data=cifar10_worker_dies:{root}",
        "--cnnbench-models=linear",
        "--cnnbench-devices=cpu:0",  # two cores to one device: one loader worker
        "--cnnbench-wrappers=single,ddp",
        *SHORT,
    )
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_train?linear-bs32-fp32-cifar10_worker_dies-single-cpu:0?*",
            "*WorkerError: rank 0 failed (exit code 1): *DataLoader worker (pid*) exited unexpectedly*",
        ]
    )
    assert (root / "a-loader-worker-died").exists()
    assert time.monotonic() - start < 60
    assert workers_of("linear") == []
