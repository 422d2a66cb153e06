import pytest

from cnnbench.machine import devices
from cnnbench.machine.devices import DeviceSet, auto_device_sets, parse_device_set


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cuda:0", DeviceSet("cuda", (0,))),
        ("cuda:0,1,2", DeviceSet("cuda", (0, 1, 2))),
        ("cpu:1,0", DeviceSet("cpu", (1, 0))),
    ],
)
def test_parse(text, expected):
    assert parse_device_set(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gpu:0", "kind must be one of cuda, cpu"),
        ("cuda", "kind must be one of"),
        ("cpu:a", "whole numbers"),
        ("cpu:", "whole numbers"),
        ("cuda:0,0", "listed twice"),
        ("cpu:-1", "whole numbers"),
    ],
)
def test_parse_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_device_set(text)


@pytest.mark.parametrize(("count", "sizes"), [(1, [1]), (2, [1, 2]), (3, [1, 2, 3]), (4, [1, 2, 4]), (6, [1, 2, 4, 6])])
def test_auto_cpu_sets(monkeypatch, count, sizes):
    monkeypatch.setattr(devices.torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(devices, "usable_cores", lambda: list(range(count)))
    assert [len(s) for s in auto_device_sets()] == sizes
    assert all(s.kind == "cpu" and s.indices == tuple(range(len(s))) for s in auto_device_sets())


def test_auto_prefers_gpus(monkeypatch):
    monkeypatch.setattr(devices.torch.cuda, "device_count", lambda: 3)
    assert [str(s) for s in auto_device_sets()] == ["cuda:0", "cuda:0,1", "cuda:0,1,2"]


def test_cpu_devices_own_disjoint_cores(monkeypatch):
    monkeypatch.setattr(devices, "usable_cores", lambda: [4, 5, 6, 7])
    assert DeviceSet("cpu", (0, 1)).cores(2) == [[4, 5], [6, 7]]
    assert DeviceSet("cpu", (1,)).cores(2) == [[6, 7]]
    assert DeviceSet("cpu", (1,)).unavailable(2) is None
    assert "needs 6 cores at 2 per device; 4 usable" in DeviceSet("cpu", (2,)).unavailable(2)


def test_missing_gpus_are_named(monkeypatch):
    monkeypatch.setattr(devices.torch.cuda, "device_count", lambda: 2)
    assert DeviceSet("cuda", (0, 1)).unavailable(1) is None
    assert DeviceSet("cuda", (1, 7)).unavailable(1) == "cuda:7 does not exist: 2 CUDA devices visible"
    monkeypatch.setattr(devices.torch.cuda, "device_count", lambda: 0)
    assert DeviceSet("cuda", (0,)).unavailable(1) == "cuda:0: no CUDA device is visible"
