"""What cnnbench writes at the end of a run, after pytest-benchmark's tables and regression list:
its speedup tables, the report, plot and verdict files, what was not saved and why, where a
rendezvous listened, and the last line, which tells a failed gate from configurations that
failed to run.
"""

from __future__ import annotations

import pytest

from cnnbench.plugin.adapter import benchmark_session
from cnnbench.plugin.keys import PYTEST_SESSION, SESSION


def write_summary(terminalreporter, config: pytest.Config, regressed: bool) -> None:
    """``regressed``: pytest-benchmark's own compare found a regression."""
    from cnnbench.report.render import text

    session = config.stash[SESSION]
    report, settings = session.report, session.settings
    if report is not None and report.run.results:
        terminalreporter.write_sep("-", "cnnbench: multi-device speedup")
        *lines, _ = text(report)
        for line in lines:
            terminalreporter.write_line(line)
        _write_files(terminalreporter, config, report)
    elif settings.report or settings.plot:
        terminalreporter.write_line("cnnbench: no benchmark result, so no report or plot was written", yellow=True)
    if report is not None and settings.verdict_json and not report.run.results:
        _write_files(terminalreporter, config, report, verdicts_only=True)  # the gate's outcome, for CI
    if session.not_saved:
        terminalreporter.write_line(session.not_saved, yellow=True)
    if settings.rdzv is not None and settings.nodes == 1:
        terminalreporter.write_line(f"cnnbench: no set spans nodes, so nothing listened on {settings.rdzv}")
    if settings.nodes > 1:
        spanning = ", ".join(str(s) for s in settings.devices if s.nodes > 1)
        where = f"{settings.rdzv} ({settings.rdzv.interface()})"
        listened = "the run listened on that interface and on loopback, nowhere else"
        terminalreporter.write_line(f"cnnbench: the rendezvous of {spanning} was at {where}: {listened}")
    failed = False
    if report is not None and (report.run.results or settings.gate.set):
        line, failed = report.outcome.line, report.outcome.failed
        if regressed and not failed:  # by pytest-benchmark's own --benchmark-compare-fail alone
            line, failed = _their_line(config, report), True
        terminalreporter.write_line(line, red=failed, green=not failed)
        from cnnbench.report.ci import annotations, on_github

        for annotation in annotations(report.outcome) if on_github() else []:
            terminalreporter.write_line(annotation)
    if crashed := _crashed(terminalreporter):
        from cnnbench.results.verdicts import failed_to_run

        terminalreporter.write_line(failed_to_run(crashed, gate_failed=failed), red=True)


def _their_line(config: pytest.Config, report) -> str:
    """The last line where only pytest-benchmark's ``--benchmark-compare-fail`` failed the run."""
    from cnnbench.results.verdicts import compare_fail_line

    ours = set(report.outcome.failures)
    return compare_fail_line([r for r in benchmark_session(config).performance_regressions if r not in ours])


def _crashed(terminalreporter) -> list[tuple[str, str]]:
    """Each configuration that failed or errored (in its setup, call or teardown), with the first
    line of why."""
    first: dict[str, str] = {}
    for key in ("failed", "error"):
        for report in terminalreporter.stats.get(key, []):
            if isinstance(report, pytest.TestReport) and report.nodeid not in first:
                crash = getattr(report.longrepr, "reprcrash", None)
                text = crash.message if crash is not None else str(report.longrepr)
                first[report.nodeid] = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return list(first.items())


def fail(session: pytest.Session) -> None:
    """Exit 1, unless the run already ends with another failure status (interrupted, no tests...)."""
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _write_files(terminalreporter, config: pytest.Config, report, verdicts_only: bool = False) -> None:
    from cnnbench.report.render import write_files

    settings = config.stash[SESSION].settings
    report_path, plot_path = (None, None) if verdicts_only else (settings.report, settings.plot)
    try:
        write_files(report, report_path, plot_path, terminalreporter.write_line, settings.verdict_json)
    except OSError as error:
        terminalreporter.write_line(f"cnnbench: could not write {error.filename}: {error.strerror}", red=True)
        fail(config.stash[PYTEST_SESSION])
