"""Speedup arithmetic, batch splits and the typed result, with no processes or timing involved."""

import dataclasses
import json
from pathlib import Path

import pytest

from cnnbench.machine.devices import parse_device_set
from cnnbench.report.judgement import compile_notes
from cnnbench.results.run import (
    MIN_ROUNDS,
    AllReduce,
    LocalRounds,
    PairedSpeedup,
    Run,
    UnpairedSpeedup,
    Unusable,
    interval,
)
from cnnbench.settings.cases import Case
from cnnbench.storage.saved import extra_info, read_result, result_of
from cnnbench.workload.data import DataSource
from cnnbench.workload.wrappers import chunk_split, even_split


def make_case(wrapper="single", devices="cpu:0", global_batch=128, scaling="strong", steps=20):
    return Case(
        model="googlenet_cifar",
        global_batch=global_batch,
        precision="fp32",
        channels_last=False,
        scaling=scaling,
        wrapper=wrapper,
        devices=parse_device_set(devices),
        steps=steps,
        rounds=5,
        warmup=5,
        threads_per_device=1,
        timeout=60,
    )


def test_reference_experiment_arithmetic():
    # 5 min 25 s on one GPU against 2 min 23 s on three, one epoch (391 steps) at batch 128 each.
    three = result_of("t", make_case("dp", "cuda:0,1,2", steps=391), [143.0], [325.0], [])
    speedup = PairedSpeedup.of(three)
    assert speedup.value == pytest.approx(2.27, abs=0.005)
    assert speedup.value / three.device_count == pytest.approx(0.76, abs=0.005)


def test_a_paired_interval_brackets_the_median_ratio_and_is_repeatable():
    rounds, references = [0.55, 0.56, 0.54, 0.60, 0.55, 0.57], [1.0, 1.02, 0.98, 1.01, 0.99, 1.0]
    two = result_of("t", make_case("ddp", "cpu:0,1"), rounds, references, [])
    speedup = PairedSpeedup.of(two)
    low, high = interval(speedup.draw)
    assert low < speedup.value < high
    assert low > 1.6 and high < 1.9
    assert interval(speedup.draw) == (low, high)  # seeded: the same data, the same interval


def test_an_unpaired_speedup_is_the_ratio_of_median_throughputs():
    one = result_of("a", make_case(), [2.0] * 4, [], [])
    two = result_of("b", make_case("ddp", "cpu:0,1"), [1.0] * 4, [], [])
    speedup = UnpairedSpeedup(two, one)
    assert speedup.value == 2.0 and interval(speedup.draw) == (2.0, 2.0)
    assert isinstance(Run([one, two]).speedup(two), UnpairedSpeedup)


@pytest.mark.parametrize(
    ("batch", "devices", "split"),
    [(128, 3, [43, 43, 42]), (32, 12, [3] * 8 + [2] * 4), (32, 10, [4, 4] + [3] * 8), (32, 20, [2] * 12 + [1] * 8)],
)
def test_the_even_split_gives_every_device_images(batch, devices, split):
    assert even_split(batch, devices) == split
    assert sum(split) == batch and min(split) >= 1


def test_data_parallel_splits_as_its_scatter_does_and_says_when_a_device_gets_nothing():
    assert chunk_split(128, 3) == [43, 43, 42]
    assert chunk_split(32, 12) == [3] * 10 + [2]  # eleven chunks for twelve devices
    case = make_case("dp", ",".join(f"cuda:{i}" for i in range(12)).replace(",cuda:", ","), global_batch=32)
    assert case.unavailable().startswith("DataParallel's scatter (chunks of ceil(batch / devices)) leaves cuda:11 ")
    assert make_case("ddp", "cpu:0,1,2,3,4,5,6,7,8,9,10,11", global_batch=32).device_batches == [3] * 8 + [2] * 4


def test_weak_scaling_keeps_the_per_device_batch():
    case = make_case("ddp", "cpu:0,1", global_batch=64, scaling="weak")
    assert case.device_batches == [32, 32]
    assert case.model_config == "googlenet_cifar-bs32-fp32-weak"
    assert case.reference.global_batch == 32 and case.reference.model_config == case.model_config


def test_the_reference_is_one_device_of_the_set_at_the_same_global_batch():
    case = make_case("ddp", "cuda:2,3")
    assert case.reference.id == "googlenet_cifar-bs128-fp32-single-cuda:2"
    assert case.reference.reference is None


def test_ids_are_readable_and_stable():
    assert make_case("ddp", "cuda:0,1,2").id == "googlenet_cifar-bs128-fp32-ddp-cuda:0,1,2"


def test_weak_scaling_speedup_compares_throughput():
    weak = make_case("ddp", "cpu:0,1", global_batch=64, scaling="weak")
    result = result_of("weak", weak, [1.25] * 3, [1.0] * 3, [])  # twice the images in 1.25x the time
    assert PairedSpeedup.of(result).value == pytest.approx(1.6)


def test_extra_info_is_written_once_and_read_back_to_the_same_result():
    case = make_case("ddp", "cpu:0,1", global_batch=32, steps=4)
    result = result_of("f::t[x]", case, [0.4, 0.5, 0.45], [0.8, 0.8, 0.9], ["CPU, 1 thread"] * 2)
    info = extra_info(case, result, Run([result]).speedup_stats(result))
    assert info["device_batches"] == [16, 16] and info["processes"] == 2 and info["paired"] is True
    assert info["speedup"] == pytest.approx(PairedSpeedup.of(result).value)
    assert info["reference"] == "googlenet_cifar-bs32-fp32-single-cpu:0"
    assert read_result({"fullname": "f::t[x]", "extra_info": info}) == result


def test_too_few_rounds_give_no_interval():
    case = make_case("ddp", "cpu:0,1")
    few = result_of("t", case, [0.5] * (MIN_ROUNDS - 1), [1.0] * (MIN_ROUNDS - 1), [])
    stats = Run([few]).speedup_stats(few)
    assert stats.speedup == 2.0 and stats.interval is None


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"round_seconds": ()}, "no round times"),
        ({"round_seconds": (1.0, -1.0, 1.0)}, "round time -1.0 is not a positive number"),
        ({"reference_seconds": (1.0,)}, "3 rounds but 1 reference rounds"),
    ],
)
def test_a_result_checks_its_rounds(change, why):
    good = result_of("t", make_case("ddp", "cpu:0,1"), [1.0] * 3, [2.0] * 3, [])
    good.check()
    with pytest.raises(Unusable, match=why):
        dataclasses.replace(good, **change).check()


def test_a_saved_entry_without_extra_info_is_unusable():
    with pytest.raises(Unusable, match="no 'devices' in its extra_info"):
        read_result({"fullname": "x", "extra_info": {}})


def test_the_local_step_is_the_reference_wrapper_alone_on_one_device_at_its_share():
    strong = make_case("ddp", "cpu:0,1,2", global_batch=128)
    assert [strong.local(i).global_batch for i in range(3)] == [43, 43, 42]
    assert str(strong.local(2).devices) == "cpu:2" and strong.local(2).wrapper == "single"
    weak = make_case("ddp", "cpu:0,1", global_batch=64, scaling="weak")
    assert weak.local(0) == weak.reference  # under weak scaling the reference already is the local step
    one = make_case("ddp", "cpu:0")
    assert one.local(0) == one.reference


def paced(rounds, reference, local_rounds, case=None, steps=20):
    """A result whose reference and local step took the given seconds per round."""
    case = case or make_case("ddp", "cpu:0,1", steps=steps)
    return result_of("t", case, rounds, reference, [], tuple(local_rounds))


def test_split_of_a_round_into_compute_bound_speedup_and_exposed_sync():
    # one device: 2.0 s per round on 128 images; alone on 64 images: 1.1 s; the pair of ranks: 1.5 s
    local = LocalRounds("cpu:0", 2, 64 * 20, (1.1,) * 5)
    split = paced([1.5] * 5, [2.0] * 5, [local]).split
    assert split.compute_bound == pytest.approx(2.0 / 1.1)
    assert split.exposed_sync == pytest.approx(0.4 / 20)  # per step
    assert split.sync_share == pytest.approx(0.4 / 1.5)
    assert split.ideal_capacity is None  # alike devices: the compute-bound speedup is the ideal
    low, high = split.compute_bound_interval
    assert low == pytest.approx(high)  # no spread, no width


def test_the_slowest_distinct_device_bounds_an_even_split_and_capacity_counts_every_device():
    # reference 1.0 s on 128 images; three devices: two fast (0.4 s on 43 images) and one slow (0.8 s on 42)
    fast = LocalRounds("cuda:0", 2, 43 * 20, (0.4,) * 3)
    slow = LocalRounds("cuda:2", 1, 42 * 20, (0.8,) * 3)
    split = paced([0.9] * 3, [1.0] * 3, [fast, slow], make_case("ddp", "cuda:0,1,2")).split
    assert split.compute_bound == pytest.approx(1.0 / 0.8)  # what an even split can reach: the slow one's pace
    capacity = (2 * 43 / 0.4 + 42 / 0.8) / 128
    assert split.ideal_capacity == pytest.approx(capacity)
    assert split.exposed_sync == pytest.approx(0.1 / 20)


def test_all_reduce_bandwidth_follows_nccl_tests():
    bucket = AllReduce(bytes=100_000_000, seconds=0.01, ranks=4)
    assert bucket.algbw == pytest.approx(10.0)  # GB/s: bytes / time
    assert bucket.busbw == pytest.approx(10.0 * 2 * 3 / 4)  # the ring's 2(n-1)/n
    two = result_of("t", make_case("ddp", "cpu:0,1"), [1.0] * 3, [1.0] * 3, [], (), (bucket, AllReduce(50, 1e-6, 4)))
    assert two.gradient == AllReduce(100_000_050, 0.010001, 4)


def test_the_split_and_all_reduce_survive_a_save_and_a_read():
    case = make_case("ddp", "cpu:0,1")
    local = LocalRounds("cpu:0", 2, 64 * 20, (1.1, 1.2, 1.0))
    bucket = AllReduce(1_059_368, 0.0013, 2)
    result = result_of("t", case, [1.5, 1.6, 1.4], [2.0, 2.1, 1.9], ["CPU", "CPU"], (local,), (bucket,))
    info = extra_info(case, result, Run([result]).speedup_stats(result))
    assert info["compute_bound_speedup"] == pytest.approx(result.split.compute_bound)
    assert info["exposed_sync_seconds"] == pytest.approx(result.split.exposed_sync)
    assert info["gradient_all_reduce"]["busbw_gbps"] == pytest.approx(1_059_368 / 0.0013 / 1e9)
    again = read_result({"fullname": "t", "extra_info": json.loads(json.dumps(info))})
    assert again == result and again.split == result.split


def test_a_result_saved_without_a_local_step_has_no_split():
    result = result_of("t", make_case("ddp", "cpu:0,1"), [1.5] * 3, [2.0] * 3, [])
    assert result.split is None and result.gradient is None


@pytest.mark.parametrize(
    "local, bucket, why",
    [
        (LocalRounds("cpu:0", 2, 64, (1.0, 1.0)), None, "the local step on cpu:0 has unusable round times"),
        (LocalRounds("cpu:0", 2, 64, (1.0, -1.0, 1.0)), None, "the local step on cpu:0 has unusable round times"),
        (None, AllReduce(1000, float("nan"), 2), "an all-reduce timing is not a positive number"),
    ],
)
def test_damaged_local_or_all_reduce_figures_are_unusable(local, bucket, why):
    result = result_of(
        "t",
        make_case("ddp", "cpu:0,1"),
        [1.5] * 3,
        [2.0] * 3,
        [],
        (local,) if local else (),
        (bucket,) if bucket else (),
    )
    with pytest.raises(Unusable, match=why):
        result.check()


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda info: info["all_reduce_buckets"][0].update(bytes=float("inf")), "unreadable extra_info"),
        (lambda info: info["local_steps"][0].update(seconds="111"), "unreadable extra_info"),
        (lambda info: info["local_steps"][0].update(alike=0), "stands for no device"),
        (lambda info: info["local_steps"][0].pop("alike"), "no 'alike' in its extra_info"),
        (lambda info: info["all_reduce_buckets"][0].update(ranks=3), "different numbers of ranks"),
    ],
)
def test_damaged_new_keys_of_a_saved_result_make_it_unusable_never_a_traceback(damage, why):
    case = make_case("ddp", "cpu:0,1")
    local = LocalRounds("cpu:0", 2, 64 * 20, (1.1, 1.2, 1.0))
    buckets = (AllReduce(1_059_368, 0.0013, 2), AllReduce(511_584, 0.0009, 2))
    result = result_of("t", case, [1.5, 1.6, 1.4], [2.0, 2.1, 1.9], [], (local,), buckets)
    info = json.loads(json.dumps(extra_info(case, result, Run([result]).speedup_stats(result))))
    damage(info)
    with pytest.raises(Unusable, match=why):
        read_result({"fullname": "t", "extra_info": info})


CIFAR10 = DataSource("cifar10", "/data/cifar10", 50_000, True)


def test_real_data_gives_the_input_share_per_pair_and_an_epoch_at_the_median_rounds_pace():
    case = dataclasses.replace(make_case("ddp", "cpu:0,1"), data=CIFAR10)
    assert case.model_config == "googlenet_cifar-bs128-fp32-cifar10"
    assert case.reference.model_config == case.model_config  # measured against a real-data single
    rounds, held = [2.0, 2.5, 2.2], [1.5, 1.5, 1.1]
    result = result_of("t", case, rounds, [3.0] * 3, [], held_seconds=held)
    pipeline = result.pipeline
    assert pipeline.input_share == pytest.approx(0.4)  # the median of 25%, 40% and 50%
    assert pipeline.input_share_interval[0] <= 0.4 <= pipeline.input_share_interval[1]
    assert pipeline.held_images_per_second == pytest.approx(128 * 20 / 1.5)
    assert pipeline.epoch_seconds == pytest.approx(50_000 / (128 * 20) * 2.2) and not pipeline.epoch_timed
    timed = result_of("t", case, rounds, [3.0] * 3, [], held_seconds=held, epoch_seconds=[40.0, 44.0, 41.0])
    assert timed.pipeline.epoch_seconds == 41.0 and timed.pipeline.epoch_timed


def test_real_data_figures_survive_a_save_and_a_read_and_older_runs_have_none():
    case = dataclasses.replace(make_case("ddp", "cpu:0,1"), data=CIFAR10)
    result = result_of("t", case, [2.0, 2.5, 2.2], [3.0] * 3, [], held_seconds=[1.5, 1.5, 1.1], epoch_seconds=[41.0])
    info = extra_info(case, result, Run([result]).speedup_stats(result))
    assert (info["data"], info["train_images"], info["published_data"], info["loader_workers"]) == (
        "cifar10",
        50_000,
        True,
        0,  # one core per CPU device: the rank loads its batches itself
    )
    assert (info["epoch_seconds"], info["timed_epoch_seconds"]) == (41.0, [41.0])
    again = read_result({"fullname": "t", "extra_info": json.loads(json.dumps(info))})
    assert again == result and again.pipeline == result.pipeline
    assert again.workload["training images"] == "50000"  # a tiny set's run is not comparable with it
    older = json.loads((Path(__file__).parents[1] / "data" / "paired_idle.json").read_text())["benchmarks"]
    assert all(read_result(bench).pipeline is None for bench in older)


def test_damaged_held_rounds_are_unusable():
    case = dataclasses.replace(make_case("ddp", "cpu:0,1"), data=CIFAR10)
    with pytest.raises(Unusable, match="held-batch rounds"):
        result_of("t", case, [2.0] * 3, [3.0] * 3, [], held_seconds=[1.0, 1.0]).check()


def test_loader_workers_follow_the_device_kind(monkeypatch):
    monkeypatch.setattr("cnnbench.machine.devices.usable_cores", lambda: list(range(8)))
    assert make_case("single", "cpu:0").loader_workers == 0  # one core: loading in the rank itself
    assert dataclasses.replace(make_case("single", "cpu:0"), threads_per_device=2).loader_workers == 1
    assert dataclasses.replace(make_case("ddp", "cpu:0,1"), threads_per_device=4).loader_workers == 3
    assert make_case("ddp", "cuda:0,1").loader_workers == 3  # 8 cores over 2 GPU ranks, one each kept
    assert make_case("single", "cuda:0").loader_workers == 4  # at most LOADER_WORKERS


def test_compile_time_is_saved_read_back_and_noted_beside_the_run():
    case = dataclasses.replace(make_case("fsdp", "cpu:0,1", global_batch=32), compile=True)
    assert case.id == "googlenet_cifar-bs32-fp32-compiled-fsdp-cpu:0,1"
    result = result_of("t", case, [1.0] * 3, [1.5] * 3, ["CPU"] * 2, compile_seconds=41.25, compiled_graphs=11)
    info = extra_info(case, result, Run([result]).speedup_stats(result))
    assert (info["compiled"], info["compile_seconds"], info["compiled_graphs"]) == (True, 41.25, 11)
    assert read_result({"fullname": "t", "extra_info": json.loads(json.dumps(info))}) == result
    eager = result_of("e", make_case("ddp", "cpu:0,1"), [1.0] * 3, [1.5] * 3, [])
    assert compile_notes(Run([result, eager])) == [
        "compiled: fsdp cpu:0,1 (googlenet_cifar-bs32-fp32-compiled): first step 41.2 s, compiling included, "
        "before the warmup (slowest rank; 11 graph(s))"
    ]
