"""The pytest plugin: options, fixtures and hooks; the work lives in ``cnnbench.plugin.session``.

Installed, it loads in every pytest run of its environment, so it stays out of the way: it is
switched on only by a cnnbench option (command line or ini key) or by a collected folder whose
``conftest.py`` says ``CNNBENCH_SUITE = True`` (as ``perf_tests/`` does). Otherwise it does
nothing: no torch import, no ``nvidia-smi``, no storage change, no signal handler, no refusal.

Switched on, it extends pytest-benchmark through its hooks: the environment fingerprint goes
into the saved ``machine_info``, storage is keyed by hardware class, speedup regressions join
pytest-benchmark's "Performance has regressed" list, and a failed, interrupted or regressed run
is not saved where the next ``--benchmark-compare`` would pick it up.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import warnings
from collections.abc import Iterator

import pytest

from cnnbench.plugin.adapter import (
    PerformanceRegression,
    PytestBenchmarkWarning,
    benchmark_session,
)
from cnnbench.plugin.fixtures import cnnbench_group, cnnbench_nodes, cnnbench_references
from cnnbench.plugin.keys import PYTEST_SESSION, SESSION
from cnnbench.plugin.summary import fail, write_summary
from cnnbench.settings.options import OPTIONS

__all__ = ["cnnbench_group", "cnnbench_nodes", "cnnbench_references"]  # the plugin's fixtures


SUITE_FLAG = "CNNBENCH_SUITE"
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
        if option.is_flag:
            group.addoption(option.flag, action="store_const", const="true", default=None, help=text)
            parser.addini(option.ini, option.help, type="bool", default=None)
        else:
            group.addoption(option.flag, default=None, metavar=option.metavar, help=text)
            parser.addini(option.ini, option.help, default="")


def _given(config: pytest.Config) -> tuple[dict[str, str | None], dict[str, str]]:
    """Each option's text, command line first, then ini key; and where each ini value came from."""
    values: dict[str, str | None] = {}
    where: dict[str, str] = {}
    for option in OPTIONS:
        value = config.getoption(option.flag)
        if value is None:
            try:
                ini = config.getini(option.ini)
            except (
                ValueError,
                pytest.UsageError,
            ) as error:  # a bool ini key that is not a truth value (9.2: UsageError)
                raise pytest.UsageError(f"{option.ini} in {config.inipath}: {error}; valid: true or false") from None
            if ini not in (None, "", []):  # unset: pytest 8 gives [] for a bool key without a default
                value = str(ini).lower() if isinstance(ini, bool) else ini
                where[option.name] = f"{option.ini} in {config.inipath}"
        values[option.name] = value
    return values, where


def switched_on(config: pytest.Config) -> bool:
    """A cnnbench option or ini key is given, or a loaded conftest declares a cnnbench suite."""
    values, _ = _given(config)
    if any(value is not None for value in values.values()):
        return True
    return any(getattr(plugin, SUITE_FLAG, False) is True for plugin in config.pluginmanager.get_plugins())


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """The baseline warning filters as the last ``-W`` filters: on pytest 9 they follow the user's."""
    if not switched_on(config):
        return
    namespace = config.known_args_namespace
    category = f"{PytestBenchmarkWarning.__module__}.{PytestBenchmarkWarning.__name__}"
    added = [f"{action}:{message}:{category}" for action, message in BASELINE_WARNINGS]
    namespace.pythonwarnings = [*(namespace.pythonwarnings or []), *added]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Before pytest-benchmark's: its storage and baseline loading depend on what is read here."""
    if not switched_on(config):
        return
    if _under_xdist(config) and not config.getoption("benchmark_disable", False):
        raise pytest.UsageError(
            "cnnbench: timings under pytest-xdist would share the machine and are not saved; "
            "add --benchmark-disable for a run-once functional check, or drop -n to time"
        )
    from cnnbench.plugin.baselines import bare_baseline, storage_by_hardware
    from cnnbench.plugin.session import CnnbenchSession

    session = config.stash[SESSION] = CnnbenchSession(*_given(config))
    if session.settings.nodes > 1 and _under_xdist(config):
        raise pytest.UsageError(
            f"cnnbench: a set across nodes has one controller, which hosts {session.settings.rdzv}; "
            "valid: without -n (pytest-xdist's workers would each try to)"
        )
    if session.settings.speedup_fail is not None and not config.getoption("benchmark_compare", None):
        raise pytest.UsageError(
            "cnnbench: --cnnbench-speedup-fail compares with a baseline; valid: with --benchmark-compare "
            "(the newest saved run of this hardware class) or --benchmark-compare=NNNN"
        )
    compare = config.getoption("benchmark_compare", None)
    if session.settings.require_baseline and not compare:
        raise pytest.UsageError(
            "cnnbench: --cnnbench-require-baseline fails a run that finds no baseline; valid: with "
            "--benchmark-compare (the newest saved run of this hardware class)"
        )
    measuring = _uses_storage(config) or config.getoption("benchmark_json", None) or session.settings.gate.set
    if measuring and (missing := session.missing_devices()):
        raise pytest.UsageError(missing)
    if session.settings.accept_level and not _saves(config):
        raise pytest.UsageError(
            "cnnbench: --cnnbench-accept-level marks this run accepted as it is saved; valid: with "
            "--benchmark-save=NAME or --benchmark-autosave"
        )
    storage = config.getoption("benchmark_storage", None)
    uses = _uses_storage(config) or session.settings.history_fail is not None  # the history is this class's runs
    if storage and uses:  # read by pytest-benchmark's pytest_configure, which runs after this one
        config.option.benchmark_storage = storage_by_hardware(storage, session.hardware, session.identified)
        if compare is True and (elsewhere := bare_baseline(session, storage)):  # pytest-benchmark would miss it
            config.option.benchmark_compare = str(elsewhere)
            session.baseline_elsewhere = elsewhere.parent.name
    for action, message in BASELINE_WARNINGS:  # pytest 8 scopes these to configuring
        warnings.filterwarnings(action, re.escape(message), PytestBenchmarkWarning)
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)  # tear worker groups down as on Ctrl-C
        config.add_cleanup(lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))


def _uses_storage(config: pytest.Config) -> bool:
    """Whether this run saves or compares: only then does its hardware class name a folder."""
    return any(config.getoption(name, None) for name in ("benchmark_save", "benchmark_autosave", "benchmark_compare"))


def _saves(config: pytest.Config) -> bool:
    return any(config.getoption(name, None) for name in ("benchmark_save", "benchmark_autosave"))


def _under_xdist(config: pytest.Config) -> bool:
    return config.getoption("dist", "no") != "no" or "PYTEST_XDIST_WORKER" in os.environ


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")


def pytest_sessionstart(session: pytest.Session) -> None:
    """After pytest-benchmark loaded the baseline: every private name cnnbench reads there is
    checked, a named baseline that matched nothing is an error, and so is none at all where
    ``--cnnbench-require-baseline`` asks for one."""
    if SESSION in session.config.stash:
        from cnnbench.plugin.baselines import check_named_baseline, require_baseline

        benchmarks = benchmark_session(session.config)
        check_named_baseline(benchmarks)
        require_baseline(benchmarks, session.config.stash[SESSION])


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    if SESSION in config.stash:
        machine_info["cnnbench"] = config.stash[SESSION].environment


def pytest_benchmark_update_json(config: pytest.Config, output_json: dict) -> None:
    """With --cnnbench-accept-level, the saved run carries the accepted mark."""
    if SESSION in config.stash and config.stash[SESSION].settings.accept_level:
        from cnnbench.storage.saved import ACCEPTED, accepted_mark

        output_json[ACCEPTED] = accepted_mark()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_benchmark_compare_machine_info(config: pytest.Config, machine_info: dict, compared_benchmark: dict):
    """Refuse a baseline from other hardware, and remember its environment for the summary's diff.

    cnnbench lists what changed itself, so pytest-benchmark's own check (a warning that dumps both
    machine_info dicts, and that breaks on a storage path outside the working directory) is shown
    the current machine_info in place of the baseline's.
    """
    if SESSION not in config.stash:
        return (yield)
    from cnnbench.plugin.baselines import refuse_other_hardware

    session = config.stash[SESSION]
    saved = compared_benchmark["machine_info"]
    session.baseline_environment = saved.get("cnnbench")
    refuse_other_hardware(session, session.baseline_environment)
    compared_benchmark["machine_info"] = machine_info
    try:
        return (yield)
    finally:
        compared_benchmark["machine_info"] = saved


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cnnbench_case" not in metafunc.fixturenames:
        return
    if SESSION not in metafunc.config.stash:
        if switched_on(metafunc.config):  # the suite's conftest.py was found only while collecting
            why = "its conftest.py was loaded too late: name the suite's folder on the command line (pytest perf_tests)"
        else:
            why = f"put `{SUITE_FLAG} = True` in the conftest.py beside {metafunc.definition.path.name}"
        pytest.fail(f"cnnbench is off in this run: {why}, or pass a --cnnbench option", pytrace=False)
    metafunc.parametrize("cnnbench_case", metafunc.config.stash[SESSION].params())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A benchmark whose setup failed (its worker group did not start) never ran. pytest-benchmark's
    own hook, inside this one, resets the fixture's ``skipped`` from the report's outcome, which
    would add "fixture was not used at all" to the error: say it again after it."""
    report = yield
    if SESSION in item.config.stash and call.when == "setup" and call.excinfo is not None:
        benchmark = getattr(item, "funcargs", {}).get("benchmark")
        if benchmark is not None:
            benchmark.skipped = True
    return report


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):
    """Before pytest-benchmark saves: judge the run, and keep a bad one away from the baselines."""
    config = session.config
    if SESSION not in config.stash:
        return (yield)
    from cnnbench.plugin.baselines import keep_out, their_regressions

    config.stash[PYTEST_SESSION] = session
    benchmarks = benchmark_session(config)
    report = config.stash[SESSION].judge(benchmarks)
    if report.outcome.failed:
        fail(session)  # whatever the terminal shows
    if benchmarks is not None:
        benchmarks.performance_regressions.extend(report.outcome.failures)  # listed by pytest-benchmark
        how = None
        if exitstatus != pytest.ExitCode.OK:
            how = "was interrupted" if exitstatus == pytest.ExitCode.INTERRUPTED else "had failures or errors"
        elif report.outcome.failures or their_regressions(benchmarks):
            how = "regressed"
        elif report.outcome.failed:
            how = "failed its gate"
        if how:
            config.stash[SESSION].not_saved = keep_out(benchmarks, how)
    return (yield)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> Iterator[None]:
    """After pytest-benchmark's tables and regression list; a regression is exit 1, not a traceback.
    The last line tells a failed gate (``gate FAILED``) from configurations that failed to run."""
    if SESSION not in config.stash:
        return (yield)
    regressed = False
    try:
        yield
    except PerformanceRegression:
        regressed = True
        fail(config.stash[PYTEST_SESSION])
    write_summary(terminalreporter, config, regressed)
