"""The pytest plugin: options, one parametrized case per configuration, the speedup gate, the summary.

It extends pytest-benchmark through its hooks: the environment fingerprint goes into the saved
``machine_info``, storage is keyed by hardware class, speedup regressions join pytest-benchmark's
"Performance has regressed" list, and a failed, interrupted or regressed run is not saved where
the next ``--benchmark-compare`` would pick it up.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import warnings
from collections.abc import Iterator

import pytest
from pytest_benchmark.logger import PytestBenchmarkWarning
from pytest_benchmark.session import PerformanceRegression

from cnnbench.baselines import keep_out, loaded_baseline, storage_by_hardware, their_regressions
from cnnbench.cases import Case
from cnnbench.compare import baseline_results, verdicts
from cnnbench.config import OPTIONS, OptionError, Settings, flag
from cnnbench.environment import differences, fingerprint, hardware_class
from cnnbench.group import WorkerGroup
from cnnbench.plot import MISSING, matplotlib_missing, plot
from cnnbench.report import Report, markdown, profile_note, text, write_atomically
from cnnbench.results import Results

SETTINGS = pytest.StashKey[Settings]()
RESULTS = pytest.StashKey[Results]()
ENVIRONMENT = pytest.StashKey[dict]()
HARDWARE = pytest.StashKey[str]()
BASELINE_ENVIRONMENT = pytest.StashKey[dict | None]()
REPORT = pytest.StashKey[Report]()
SESSION = pytest.StashKey[pytest.Session]()
NOT_SAVED = pytest.StashKey[str]()
# Warnings pytest-benchmark gives while it loads baselines, in its pytest_configure: an unreadable
# saved run is skipped with a warning, never an error, even where warnings are errors; "no baseline"
# is replaced by cnnbench's own "baseline: none yet" line. pytest applies its filters for
# configuring at a point that differs between versions: 9.2 before any pytest_configure, 9.0 in its
# warnings plugin's (after cnnbench's), 8 not at all.
BASELINE_WARNINGS = (("default", "Failed to load"), ("ignore", "Can't compare. No benchmark files"))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cnnbench", "cnnbench: multi-device CNN training benchmarks")
    for option in OPTIONS:
        text = option.help.replace("%", "%%")  # argparse formats help with %
        if option.parse is flag:
            group.addoption(option.flag, action="store_const", const="true", default=None, help=text)
        else:
            group.addoption(option.flag, default=None, metavar=option.name.split("-")[-1].upper(), help=text)
        parser.addini(option.ini, option.help, default="")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """The baseline warning filters as the last ``-W`` filters: on pytest 9 they follow the user's."""
    namespace = config.known_args_namespace
    category = f"{PytestBenchmarkWarning.__module__}.{PytestBenchmarkWarning.__name__}"
    added = [f"{action}:{message}:{category}" for action, message in BASELINE_WARNINGS]
    namespace.pythonwarnings = [*(namespace.pythonwarnings or []), *added]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Before pytest-benchmark's: its storage and baseline loading depend on what is read here."""
    values = {}
    for option in OPTIONS:
        value = config.getoption(option.flag)
        values[option.name] = value if value is not None else (config.getini(option.ini) or None)
    try:
        settings = config.stash[SETTINGS] = Settings.from_values(values)
    except OptionError as error:
        raise pytest.UsageError(str(error)) from None
    if _under_xdist(config) and not config.getoption("benchmark_disable", False):
        raise pytest.UsageError(
            "cnnbench: timings under pytest-xdist would share the machine and are not saved; "
            "add --benchmark-disable for a run-once functional check, or drop -n to time"
        )
    if settings.plot and matplotlib_missing():
        raise pytest.UsageError(MISSING)
    config.stash[RESULTS] = Results()
    environment = config.stash[ENVIRONMENT] = fingerprint()
    hardware = config.stash[HARDWARE] = hardware_class(environment, settings.kind)
    config.stash[BASELINE_ENVIRONMENT] = None
    storage = config.getoption("benchmark_storage", None)
    if storage:  # read by pytest-benchmark's own pytest_configure, which runs after this one
        config.option.benchmark_storage = storage_by_hardware(storage, hardware)
    for action, message in BASELINE_WARNINGS:  # pytest 8 scopes these to configuring
        warnings.filterwarnings(action, re.escape(message), PytestBenchmarkWarning)
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)  # tear worker groups down as on Ctrl-C
        config.add_cleanup(lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))


def _under_xdist(config: pytest.Config) -> bool:
    return config.getoption("dist", "no") != "no" or "PYTEST_XDIST_WORKER" in os.environ


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    machine_info["cnnbench"] = config.stash[ENVIRONMENT]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_benchmark_compare_machine_info(config: pytest.Config, machine_info: dict, compared_benchmark: dict):
    """Refuse a baseline from other hardware, and remember its environment for the summary's diff.

    cnnbench lists what changed itself, so pytest-benchmark's own check (a warning that dumps both
    machine_info dicts, and that breaks on a storage path outside the working directory) is shown
    the current machine_info in place of the baseline's.
    """
    saved = compared_benchmark["machine_info"]
    baseline = config.stash[BASELINE_ENVIRONMENT] = saved.get("cnnbench")
    settings = config.stash[SETTINGS]
    if baseline is not None and not settings.compare_any_hardware:
        theirs, ours = hardware_class(baseline, settings.kind), config.stash[HARDWARE]
        if theirs != ours:
            raise pytest.UsageError(
                f"cnnbench: the --benchmark-compare baseline comes from {theirs}, this machine is {ours}; "
                "speedups compare only within one hardware class (--cnnbench-compare-any-hardware to compare anyway)"
            )
    compared_benchmark["machine_info"] = machine_info
    try:
        return (yield)
    finally:
        compared_benchmark["machine_info"] = saved


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

    Labels the benchmark with the case, and records its round times for the speedup computation.
    """
    benchmark.group = cnnbench_case.model_config
    benchmark.extra_info.update(cnnbench_case.extra_info())
    with WorkerGroup(cnnbench_case) as group:
        benchmark.extra_info["device_names"] = group.device_names
        yield group
    if benchmark.stats:
        request.config.stash[RESULTS].add(benchmark.fullname, benchmark.stats.stats.data, benchmark.extra_info)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):
    """Before pytest-benchmark saves: judge the run, and keep a bad one away from the baselines."""
    config = session.config
    config.stash[SESSION] = session
    benchmarks = getattr(config, "_benchmarksession", None)  # pytest-benchmark's session
    report = config.stash[REPORT] = _report(config, benchmarks)
    if benchmarks is not None:
        regressions = [(name, f) for name, v in report.verdicts.items() for f in v.failures]
        benchmarks.performance_regressions.extend(regressions)  # listed, and exit 1, by pytest-benchmark
        message = None
        if exitstatus != pytest.ExitCode.OK:
            message = keep_out(benchmarks, _how(exitstatus))
        elif regressions or their_regressions(benchmarks):
            message = keep_out(benchmarks, "regressed")
        if message:
            config.stash[NOT_SAVED] = message
    return (yield)


def _report(config: pytest.Config, benchmarks) -> Report:
    settings, results = config.stash[SETTINGS], config.stash[RESULTS]
    compared = bool(benchmarks and benchmarks.compare)
    path, saved = loaded_baseline(benchmarks) if compared else (None, [])
    judged = verdicts(results.by_name, baseline_results(saved), settings.speedup_fail, settings.min_efficiency)
    changes = []
    if path:
        old = config.stash[BASELINE_ENVIRONMENT]
        changes = differences(old, config.stash[ENVIRONMENT]) if old else ["the baseline has no cnnbench fingerprint"]
    notes = [note for note in [profile_note(settings.profile)] if note]
    if settings.speedup_fail is not None and not compared:
        notes.append("note: --cnnbench-speedup-fail compares with a baseline: add --benchmark-compare to gate drops")
    return Report(
        results=results,
        verdicts={v.name: v for v in judged},
        environment=config.stash[ENVIRONMENT],
        hardware=config.stash[HARDWARE],
        compared=compared,
        baseline=path,
        storage=str(benchmarks.storage) if benchmarks else None,
        wanted=benchmarks.compare if compared and benchmarks.compare is not True else None,
        changes=changes,
        gate=settings.gate,
        notes=notes,
    )


def _how(exitstatus: int) -> str:
    return "was interrupted" if exitstatus == pytest.ExitCode.INTERRUPTED else "had failures or errors"


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> Iterator[None]:
    """After pytest-benchmark's tables and regression list; a regression is exit 1, not a traceback."""
    try:
        yield
    except PerformanceRegression:
        config.stash[SESSION].exitstatus = pytest.ExitCode.TESTS_FAILED
    report, settings = config.stash.get(REPORT, None), config.stash[SETTINGS]
    if report is not None and report.results.by_name:
        terminalreporter.write_sep("-", "cnnbench: multi-device speedup")
        for line in text(report):
            terminalreporter.write_line(line)
        _write_files(terminalreporter, config, report)
    elif settings.report or settings.plot:
        terminalreporter.write_line("cnnbench: no benchmark result, so no report or plot was written", yellow=True)
    if NOT_SAVED in config.stash:
        terminalreporter.write_line(config.stash[NOT_SAVED], yellow=True)


def _write_files(terminalreporter, config: pytest.Config, report: Report) -> None:
    settings = config.stash[SETTINGS]
    try:
        if settings.report:
            write_atomically(settings.report, markdown(report).encode())
            terminalreporter.write_line(f"cnnbench: report written to {settings.report}")
        if settings.plot:
            plot(report, settings.plot)
            terminalreporter.write_line(f"cnnbench: plot written to {settings.plot}")
    except OSError as error:
        terminalreporter.write_line(f"cnnbench: could not write {error.filename}: {error.strerror}", red=True)
        config.stash[SESSION].exitstatus = pytest.ExitCode.TESTS_FAILED
