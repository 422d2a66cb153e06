import pytest
import torch

from cnnbench.settings import config
from cnnbench.settings.cases import Case
from cnnbench.settings.config import PROFILES, OptionError, Settings


@pytest.fixture(autouse=True)
def cpu_machine(monkeypatch):
    cores(monkeypatch, 2)


def cores(monkeypatch, count: int) -> None:
    """A CPU-only machine with ``count`` usable cores."""
    monkeypatch.setattr(config.torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(config, "usable_cores", lambda: list(range(count)))
    monkeypatch.setattr("cnnbench.machine.devices.usable_cores", lambda: list(range(count)))


def test_defaults_on_a_cpu_machine():
    settings = Settings.from_values({})
    assert settings.profile == "quick"
    assert settings.models == PROFILES["quick"]["models"]
    assert [str(s) for s in settings.devices] == ["cpu:0", "cpu:0,1"]
    assert settings.threads_per_device == 1
    assert [c.id for c in settings.cases()] == [
        "googlenet_cifar_small-bs32-fp32-single-cpu:0",
        "googlenet_cifar_small-bs32-fp32-dp-cpu:0,1",
        "googlenet_cifar_small-bs32-fp32-ddp-cpu:0",
        "googlenet_cifar_small-bs32-fp32-ddp-cpu:0,1",
        "googlenet_cifar_small-bs32-fp32-fsdp-cpu:0",
        "googlenet_cifar_small-bs32-fp32-fsdp-cpu:0,1",
    ]


def test_explicit_values_override_the_profile():
    settings = Settings.from_values(
        {"profile": "seed", "steps": "3", "devices": "cpu:0", "models": "resnet18_cifar,tv_resnet18"}
    )
    assert (settings.batch_size, settings.steps, settings.rounds) == (128, 3, PROFILES["seed"]["rounds"])
    assert settings.models == ("resnet18_cifar", "tv_resnet18")
    assert settings.threads_per_device == 2  # one-device sets get every core


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("profile", "fast", "--cnnbench-profile: unknown 'fast'; valid: seed, quick"),
        ("models", "vgg", "--cnnbench-models: unknown 'vgg'; valid: "),
        ("models", "", "--cnnbench-models: unknown ''"),
        ("wrappers", "zero", "--cnnbench-wrappers: unknown 'zero'; valid: single, dp, ddp, fsdp"),
        ("precision", "fp8", "--cnnbench-precision: unknown 'fp8'; valid: fp32, bf16, fp16"),
        ("devices", "gpu:0", "--cnnbench-devices: bad device set 'gpu:0'"),
        ("devices", "cpu:a", "--cnnbench-devices: bad device set 'cpu:a'"),
        ("steps", "0", "--cnnbench-steps: got '0'; valid: a whole number >= 1"),
        ("rounds", "x", "--cnnbench-rounds: got 'x'"),
        ("warmup", "-1", "--cnnbench-warmup: got '-1'; valid: a whole number >= 0"),
        ("batch-size", "2.5", "--cnnbench-batch-size: got '2.5'"),
        ("scaling", "both", "--cnnbench-scaling: unknown 'both'; valid: strong, weak"),
        ("timeout", "0", "--cnnbench-timeout: got '0'"),
        ("timeout", "inf", "--cnnbench-timeout: got 'inf'"),
    ],
)
def test_bad_values_name_the_option_and_the_valid_ones(name, value, message):
    with pytest.raises(OptionError) as error:
        Settings.from_values({name: value})
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_a_batch_smaller_than_the_device_set_is_refused():
    with pytest.raises(OptionError, match="a global batch of 2 cannot be split over the 3 devices of cuda:0,1,2"):
        Settings.from_values({"batch-size": "2", "devices": "cuda:0 cuda:0,1,2"})


@pytest.mark.parametrize("count", range(1, 65))
def test_the_default_run_works_on_any_core_count(monkeypatch, count):
    cores(monkeypatch, count)
    settings = Settings.from_values({})
    runnable = [c for c in settings.cases() if c.unavailable() is None]
    assert {c.wrapper for c in runnable} == {"single", "ddp", "fsdp"}
    for case in runnable:
        assert min(case.device_batches) >= 1 and sum(case.device_batches) == 32
        assert len(case.device_batches) == len(case.devices)
        assert all(len(share) == settings.threads_per_device for share in case.cores)
    assert max(len(s) for s in settings.devices) == min(count, 32)


def test_a_gate_needs_enough_rounds_to_judge():
    with pytest.raises(OptionError, match="--cnnbench-rounds: 2 rounds cannot be judged by the gate; valid: at least"):
        Settings.from_values({"rounds": "2", "speedup-fail": "10%"})
    assert Settings.from_values({"rounds": "2"}).rounds == 2  # without a gate, a short run is fine


def test_an_ini_value_error_names_the_key_and_the_file():
    with pytest.raises(OptionError, match=r"^cnnbench_rounds in /x/tox.ini: got '0'; valid: a whole number >= 1$"):
        Settings.from_values({"rounds": "0"}, {"rounds": "cnnbench_rounds in /x/tox.ini"})


def test_the_autocast_names_match_the_training_step():
    from cnnbench.settings.options import PRECISIONS
    from cnnbench.workload.step import DTYPES

    assert tuple(DTYPES) == PRECISIONS


def test_a_compiled_run_is_a_model_config_of_its_own_and_dp_says_why_it_is_not_compiled():
    settings = Settings.from_values({"compile": "true", "devices": "cpu:0 cpu:0,1 cuda:0,1"})
    cases = {c.id: c for c in settings.cases()}
    ddp = cases["googlenet_cifar_small-bs32-fp32-compiled-ddp-cpu:0,1"]
    assert ddp.reference.id == "googlenet_cifar_small-bs32-fp32-compiled-single-cpu:0"  # compiled too
    assert ddp.local(1).compile and ddp.unavailable() is None
    assert cases["googlenet_cifar_small-bs32-fp32-compiled-fsdp-cpu:0,1"].unavailable() is None
    assert (
        cases["googlenet_cifar_small-bs32-fp32-compiled-dp-cuda:0,1"]
        .unavailable()
        .startswith("dp is not compiled (--cnnbench-compile): DataParallel replicates the module every step")
    )
    assert Case.from_json(ddp.to_json()) == ddp
    eager = Settings.from_values({"devices": "cpu:0,1", "wrappers": "ddp"}).cases()
    assert [c.id for c in eager] == ["googlenet_cifar_small-bs32-fp32-ddp-cpu:0,1"]


def test_a_wrapper_this_torch_cannot_run_is_skipped_with_its_reason(monkeypatch):
    monkeypatch.setattr("cnnbench.workload.wrappers._fully_shard", lambda: None)
    settings = Settings.from_values({"devices": "cpu:0,1", "wrappers": "fsdp,ddp"})
    reasons = {c.wrapper: c.unavailable() for c in settings.cases()}
    missing = f"fsdp needs FSDP2 (torch.distributed.fsdp.fully_shard); torch {torch.__version__} has none"
    assert reasons["fsdp"] == missing
    assert reasons["ddp"] is None
