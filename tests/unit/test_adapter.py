"""The seam to pytest-benchmark's private state: a release without a name cnnbench reads fails the
run at once, with the name, rather than leaving a gate that silently judges nothing."""

import pytest
from pytest_benchmark.session import BenchmarkSession

from cnnbench.plugin import adapter
from conftest import SUITE_CONFTEST

GONE = """
import pytest

@pytest.hookimpl(trylast=True)
def pytest_configure(config):  # after pytest-benchmark made its session: as if a release lacked the name
    session = config._benchmarksession
    if {name!r} in vars(session):
        delattr(session, {name!r})
"""


@pytest.mark.parametrize("name", adapter.SESSION_NAMES)
def test_a_session_name_gone_fails_the_run_naming_it(suite, monkeypatch, name):
    if name in vars(BenchmarkSession):  # a method or a class default: gone from the class
        monkeypatch.delattr(BenchmarkSession, name)
    if not callable(getattr(BenchmarkSession, name, None)):  # set on the session when it is made: gone from it
        suite.makeconftest(SUITE_CONFTEST + GONE.format(name=name))
    result = suite.runpytest_inprocess("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: cnnbench: pytest-benchmark * has no BenchmarkSession.{name}, which *"])


def test_the_session_itself_gone_fails_the_run(suite, monkeypatch):
    monkeypatch.setattr(adapter, "SESSION_ATTRIBUTE", "_renamed_session")
    result = suite.runpytest_inprocess("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: cnnbench: pytest-benchmark * has no pytest.Config._renamed_session, *"])


@pytest.mark.parametrize(("read", "name"), [(adapter.timer, "_timer"), (adapter.round_seconds, "stats")])
def test_a_fixture_name_gone_is_named(read, name):
    with pytest.raises(adapter.SeamError, match=rf"has no BenchmarkFixture\.{name}, which cnnbench reads"):
        read(object())


def test_the_names_are_read_where_they_are(suite):
    """The real fixture and session have every name: a run collects, and the fixture's are there."""
    result = suite.runpytest_inprocess("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    from pytest_benchmark.fixture import BenchmarkFixture

    assert "_timer" in BenchmarkFixture.__init__.__code__.co_names
