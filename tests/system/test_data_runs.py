"""Real data through worker groups and loader workers: a real-data run, and loader workers that hang or die."""

import json
import statistics
import time

import pytest
from cifar_files import write
from loader_feed import feed
from processes import ranks
from torchvision.datasets import CIFAR10

from cnnbench.workload.cifar import training_set
from cnnbench.workload.data import LoaderBatches

SHORT = ["--cnnbench-steps=1", "--cnnbench-rounds=3", "--cnnbench-warmup=1"]
EXPECTED = "expected cifar-10-batches-py/ with data_batch_1..5, test_batch and batches.meta (CIFAR-10's python version)"


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
    assert ranks() == []
