import contextlib
import os
from pathlib import Path

import matplotlib.figure  # noqa: F401  in-process runs forget modules they import; keep one copy for all
import pytest

import cnnbench.plugin.session
import cnnbench.ranks.group  # noqa: F401  and the warm server's handle: one server for every run here

# hypothesis's pytest plugin, where it is installed, imports hypothesis in each run's terminal summary
# (about 1 s): imported once here, every in-process run finds it
with contextlib.suppress(ImportError):
    import hypothesis  # noqa: F401

PERF_TESTS = Path(__file__).parents[1] / "perf_tests"
PERF_TEST = (PERF_TESTS / "test_training.py").read_text()
SUITE_CONFTEST = (PERF_TESTS / "conftest.py").read_text()


@pytest.fixture
def suite(pytester, monkeypatch):
    """A sandbox holding the real perf test, for in-process pytest runs with the plugin."""
    pytester.makepyfile(test_training=PERF_TEST)
    pytester.makeconftest(SUITE_CONFTEST)
    # In-process runs see the plugin already imported by this session, which is no fault of theirs.
    monkeypatch.setenv("PYTEST_ADDOPTS", "-W ignore::pytest.PytestAssertRewriteWarning")
    return pytester


@pytest.fixture(scope="session")
def tiny_cifar(tmp_path_factory) -> Path:
    """A folder holding CIFAR-10's python version in the real on-disk format: 500 random training
    images, so not the published set."""
    from cifar_files import write

    return write(tmp_path_factory.mktemp("cifar"))


SYSTEM = Path(__file__).parent / "system"


def pytest_configure(config: pytest.Config) -> None:
    from processes import subreaper

    subreaper()  # a rank that outlives its controller stays below this process, where tests look


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests under system/ start processes (worker groups, nested benchmark runs, nodes): marked
    ``processes``, so ``-m 'not processes'`` is the unit layer wherever they are selected from."""
    for item in items:
        if SYSTEM in item.path.parents:
            item.add_marker(pytest.mark.processes)
    # the unit layer first: the system layer's runs register models, wrappers and data kinds in this process
    items.sort(key=lambda item: SYSTEM in item.path.parents)


@pytest.fixture(autouse=True)
def _no_timing_under_xdist(request: pytest.FixtureRequest) -> None:
    """Tests marked ``timing`` judge speedups measured on these cores: beside other tests' processes
    (-n) they would judge the load, not the code, so there they fail at once, saying so."""
    if request.node.get_closest_marker("timing") and "PYTEST_XDIST_WORKER" in os.environ:
        pytest.fail(
            "a timing test measures speedups on these cores: run it without -n, or leave it out with -m 'not timing'",
            pytrace=False,
        )
