"""Speedup arithmetic and bookkeeping, with no processes or timing involved."""

import pytest

from cnnbench.cases import Case
from cnnbench.devices import parse_device_set
from cnnbench.results import Results, efficiency, interval, speedup, throughput


def make_case(wrapper="single", devices="cpu:0", batch_size=128, scaling="strong", steps=20):
    return Case(
        model="googlenet_cifar",
        batch_size=batch_size,
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


def result(rounds, global_batch=128, steps=20, world_size=1, wrapper="single"):
    return {
        "model_config": "m",
        "wrapper": wrapper,
        "world_size": world_size,
        "global_batch": global_batch,
        "steps_per_round": steps,
        "round_seconds": rounds,
    }


def test_reference_experiment_arithmetic():
    # 5 min 25 s on one GPU against 2 min 23 s on three, one epoch (391 steps) at batch 128 each.
    one, three = result([325.0], steps=391), result([143.0], steps=391, world_size=3)
    ratio = speedup(three, one)(throughput)
    assert ratio == pytest.approx(2.27, abs=0.005)
    assert efficiency(ratio, 3) == pytest.approx(0.76, abs=0.005)


def test_interval_brackets_the_median_ratio_and_is_repeatable():
    one = result([1.00, 1.02, 0.98, 1.01, 0.99, 1.00])
    two = result([0.55, 0.56, 0.54, 0.60, 0.55, 0.57], world_size=2)
    ratio = speedup(two, one)
    low, high = interval(ratio)
    assert low < ratio(throughput) < high
    assert low > 1.6 and high < 1.9
    assert interval(ratio) == (low, high)  # seeded: the same data, the same interval


def test_interval_of_a_constant_is_a_point():
    one, two = result([2.0] * 4), result([1.0] * 4, world_size=2)
    assert interval(speedup(two, one)) == (2.0, 2.0)


def test_strong_scaling_splits_like_data_parallel():
    case = make_case("dp", "cuda:0,1,2")
    assert case.device_batches == [43, 43, 42]
    assert case.global_batch == 128
    assert make_case("ddp", "cpu:0,1", batch_size=32).device_batches == [16, 16]


def test_weak_scaling_keeps_the_per_device_batch():
    case = make_case("ddp", "cpu:0,1", batch_size=32, scaling="weak")
    assert case.device_batches == [32, 32] and case.global_batch == 64
    assert case.model_config == "googlenet_cifar-bs32-fp32-weak"


def test_ids_are_readable_and_stable():
    assert make_case("ddp", "cuda:0,1,2").id == "googlenet_cifar-bs128-fp32-ddp-cuda:0,1,2"


def test_speedups_in_any_order():
    results = Results()
    ddp = make_case("ddp", "cpu:0,1")
    ddp_info, single_info = ddp.extra_info(), make_case().extra_info()
    results.add("ddp", [1.0, 1.1, 0.9], ddp_info)  # before its reference: no speedup yet
    assert ddp_info["speedup"] is None
    results.add("single", [1.8, 1.8, 1.8], single_info)
    assert single_info["speedup"] == pytest.approx(1.0) and single_info["speedup_ci"] is None
    assert ddp_info["speedup"] == pytest.approx(1.8)
    assert ddp_info["speedup_ci"][0] < 1.8 < ddp_info["speedup_ci"][1]
    assert ddp_info["efficiency"] == pytest.approx(0.9)
    assert ddp_info["images_per_second"] == pytest.approx(128 * 20 / 1.0)
    assert ddp_info["round_seconds"] == [1.0, 1.1, 0.9]


def test_weak_scaling_speedup_compares_throughput():
    results = Results()
    single, weak = make_case(batch_size=32, scaling="weak"), make_case("ddp", "cpu:0,1", batch_size=32, scaling="weak")
    single_info, weak_info = single.extra_info(), weak.extra_info()
    results.add("single", [1.0], single_info)
    results.add("weak", [1.25], weak_info)  # twice the images in 1.25x the time
    assert weak_info["speedup"] == pytest.approx(1.6)
