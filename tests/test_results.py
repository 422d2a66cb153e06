"""Speedup arithmetic and bookkeeping, with no processes or timing involved."""

import pytest

from cnnbench.cases import Case
from cnnbench.devices import parse_device_set
from cnnbench.results import Results, efficiency, images_per_second, speedup


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


def test_reference_experiment_arithmetic():
    # 5 min 25 s on one GPU against 2 min 23 s on three, one epoch (391 steps) at batch 128 each.
    one, three = images_per_second(128, 391, 325), images_per_second(128, 391, 143)
    assert speedup(three, one) == pytest.approx(2.27, abs=0.005)
    assert efficiency(speedup(three, one), 3) == pytest.approx(0.76, abs=0.005)


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
    results.add(ddp, 1.0, ddp_info)  # before its reference: no speedup yet
    assert ddp_info["speedup"] is None
    results.add(make_case(), 1.8, single_info)
    assert single_info["speedup"] == pytest.approx(1.0)
    assert ddp_info["speedup"] == pytest.approx(1.8)
    assert ddp_info["efficiency"] == pytest.approx(0.9)
    assert ddp_info["images_per_second"] == pytest.approx(128 * 20 / 1.0)


def test_weak_scaling_speedup_compares_throughput():
    results = Results()
    single, weak = make_case(batch_size=32, scaling="weak"), make_case("ddp", "cpu:0,1", batch_size=32, scaling="weak")
    single_info, weak_info = single.extra_info(), weak.extra_info()
    results.add(single, 1.0, single_info)
    results.add(weak, 1.25, weak_info)  # twice the images in 1.25x the time
    assert weak_info["speedup"] == pytest.approx(1.6)
