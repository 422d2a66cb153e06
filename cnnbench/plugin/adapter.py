"""The one seam to pytest-benchmark where it has no public hook: its session object and its fixture.

cnnbench reads pytest-benchmark's state only through this module. Every private name used is
listed here and checked when cnnbench switches on, so a pytest-benchmark release that renames one
fails the run at once with the name, instead of a gate that silently stops gating. Checked on
pytest-benchmark 5.2.0 (on pytest 8) and 5.3.1 (``tox -e benchmark-oldest,benchmark-newest``).

- ``config._benchmarksession``: the plugin's ``BenchmarkSession``, created in its pytest_configure;
- on it: ``compare`` (the --benchmark-compare value), ``compared_mapping`` (path -> the loaded
  baseline's benchmarks by name), ``storage`` (with ``.path`` for folder storage), ``machine_id``,
  ``compare_fail``, ``performance_regressions`` (the list its summary prints and fails on),
  ``prepare_benchmarks()`` (runs the --benchmark-compare-fail checks), ``save``, ``autosave``,
  ``json`` (where the run is written), ``benchmarks`` (this run's fixtures);
- on the ``benchmark`` fixture: ``_timer`` (the clock --benchmark-timer chose) and ``stats.stats.data``
  (the timed rounds, in seconds);
- ``pytest_benchmark.session.PerformanceRegression``, ``pytest_benchmark.logger.PytestBenchmarkWarning``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pytest_benchmark.logger import PytestBenchmarkWarning
from pytest_benchmark.session import PerformanceRegression

SESSION_ATTRIBUTE = "_benchmarksession"
SESSION_NAMES = (
    "compare",
    "compared_mapping",
    "storage",
    "machine_id",
    "compare_fail",
    "performance_regressions",
    "prepare_benchmarks",
    "save",
    "autosave",
    "json",
    "benchmarks",
)
FIXTURE_NAMES = ("_timer", "stats")

__all__ = ["PerformanceRegression", "PytestBenchmarkWarning", "benchmark_session", "round_seconds", "timer"]


class SeamError(pytest.UsageError):
    """pytest-benchmark lacks a private name cnnbench reads: one line naming it."""


def _missing(owner: str, name: str) -> SeamError:
    from importlib.metadata import version

    return SeamError(
        f"cnnbench: pytest-benchmark {version('pytest-benchmark')} has no {owner}.{name}, which cnnbench reads to "
        "judge and save runs (cnnbench/plugin/adapter.py); valid: pytest-benchmark 5.2 to 5.3"
    )


def benchmark_session(config: pytest.Config) -> Any | None:
    """pytest-benchmark's session, every name cnnbench reads on it checked; None where its plugin is off."""
    session = getattr(config, SESSION_ATTRIBUTE, None)
    if session is None:
        if config.pluginmanager.has_plugin("benchmark"):  # its entry point's name
            raise _missing("pytest.Config", SESSION_ATTRIBUTE)
        return None
    for name in SESSION_NAMES:
        if not hasattr(session, name):
            raise _missing("BenchmarkSession", name)
    return session


def _fixture_name(fixture: Any, name: str) -> Any:
    try:
        return getattr(fixture, name)
    except AttributeError:
        raise _missing("BenchmarkFixture", name) from None


def timer(fixture: Any) -> Callable[[], float]:
    """The clock pytest-benchmark times rounds with (``--benchmark-timer``)."""
    return _fixture_name(fixture, "_timer")


def round_seconds(fixture: Any) -> list[float] | None:
    """The fixture's timed rounds in seconds; None where it timed nothing."""
    stats = _fixture_name(fixture, "stats")
    return None if stats is None else list(stats.stats.data)
