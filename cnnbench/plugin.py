"""The pytest plugin: cnnbench options, one parametrized case per configuration, the summary."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

from cnnbench.cases import Case
from cnnbench.config import OPTIONS, OptionError, Settings
from cnnbench.group import WorkerGroup
from cnnbench.report import summary
from cnnbench.results import Results

SETTINGS = pytest.StashKey[Settings]()
RESULTS = pytest.StashKey[Results]()
NOT_SAVED = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cnnbench", "cnnbench: multi-device CNN training benchmarks")
    for option in OPTIONS:
        if option.name == "channels-last":
            group.addoption(option.flag, action="store_const", const="true", default=None, help=option.help)
        else:
            group.addoption(option.flag, default=None, metavar=option.name.split("-")[-1].upper(), help=option.help)
        parser.addini(option.ini, option.help, default="")


def pytest_configure(config: pytest.Config) -> None:
    values = {}
    for option in OPTIONS:
        value = config.getoption(option.flag)
        values[option.name] = value if value is not None else (config.getini(option.ini) or None)
    try:
        config.stash[SETTINGS] = Settings.from_values(values)
    except OptionError as error:
        raise pytest.UsageError(str(error)) from None
    if _under_xdist(config) and not config.getoption("benchmark_disable", False):
        raise pytest.UsageError(
            "cnnbench: timings under pytest-xdist would share the machine and are not saved; "
            "add --benchmark-disable for a run-once functional check, or drop -n to time"
        )
    config.stash[RESULTS] = Results()
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)  # tear worker groups down as on Ctrl-C
        config.add_cleanup(lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))


def _under_xdist(config: pytest.Config) -> bool:
    return config.getoption("dist", "no") != "no" or "PYTEST_XDIST_WORKER" in os.environ


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cnnbench_case" not in metafunc.fixturenames:
        return
    params = []
    for case in metafunc.config.stash[SETTINGS].cases():
        reason = case.unavailable()
        params.append(pytest.param(case, id=case.id, marks=[pytest.mark.skip(reason=reason)] if reason else []))
    metafunc.parametrize("cnnbench_case", params)


@pytest.fixture
def cnnbench_group(cnnbench_case: Case, benchmark, request: pytest.FixtureRequest) -> Iterator[WorkerGroup]:
    """The case's worker group, started (and warmed up) before the benchmark, closed after it.

    Labels the benchmark with the case, and records its result for the speedup computation.
    """
    benchmark.group = cnnbench_case.model_config
    benchmark.extra_info.update(cnnbench_case.extra_info())
    results = request.config.stash[RESULTS]
    with WorkerGroup(cnnbench_case) as group:
        yield group
        results.device_names.update(zip(cnnbench_case.devices.devices, group.device_names, strict=False))
    if benchmark.stats:
        results.add(cnnbench_case, benchmark.stats.stats.median, benchmark.extra_info)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):
    """An interrupted or failed run is not saved as a baseline (it would be compared against next)."""
    benchmarks = getattr(session.config, "_benchmarksession", None)  # pytest-benchmark's session
    if exitstatus != pytest.ExitCode.OK and benchmarks is not None and (benchmarks.save or benchmarks.autosave):
        benchmarks.save = benchmarks.autosave = False
        session.config.stash[NOT_SAVED] = (
            f"cnnbench: this run was not saved to {benchmarks.storage}: it {_how(exitstatus)}"
        )
    yield


def _how(exitstatus: int) -> str:
    return "was interrupted" if exitstatus == pytest.ExitCode.INTERRUPTED else "had failures or errors"


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    lines = summary(config.stash[SETTINGS], config.stash[RESULTS])
    if lines:
        terminalreporter.write_sep("-", "cnnbench: multi-device speedup")
        for line in lines:
            terminalreporter.write_line(line)
    if NOT_SAVED in config.stash:
        terminalreporter.write_line(config.stash[NOT_SAVED], yellow=True)
