"""The summary, the Markdown report and the plot, from saved runs in tests/data."""

import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from matplotlib.image import imread

from cnnbench.compare import baseline_results, verdicts
from cnnbench.plot import plot
from cnnbench.report import Report, markdown, text, write_atomically
from cnnbench.results import Results

DATA = Path(__file__).parent / "data"


def report(now: str, baseline: str | None) -> Report:
    saved = json.loads((DATA / now).read_text())
    results = Results()
    results.by_name = {bench["fullname"]: bench["extra_info"] for bench in saved["benchmarks"]}
    old = baseline_results(json.loads((DATA / baseline).read_text())["benchmarks"]) if baseline else {}
    judged = verdicts(results.by_name, old, 0.2, None)
    return Report(
        results=results,
        verdicts={v.name: v for v in judged},
        environment=saved["machine_info"]["cnnbench"],
        hardware="cpu-2xAMD_EPYC",
        compared=baseline is not None,
        baseline=baseline,
        changes=["torch 2.0.0 -> 2.14.1"],
        gate="speedup drop beyond 20% and beyond noise fails" if baseline else None,
    )


def test_the_summary_aligns_its_columns():
    lines = text(report("straggler.json", "idle.json"))
    table = lines[1:5]
    assert table[0].split() == [
        "wrapper",
        "devices",
        "images/s",
        "speedup",
        "95%",
        "CI",
        "efficiency",
        "baseline",
        "change",
        "95%",
        "CI",
        "verdict",
    ]
    assert table[3].endswith("regressed")
    assert len({line.index("x ") for line in table[2:]}) == 1  # speedups right-aligned in one column
    assert "environment changed: torch 2.0.0 -> 2.14.1" in lines


def test_without_a_baseline_the_summary_has_no_baseline_columns():
    lines = text(report("idle.json", None))
    assert lines[1].split()[-1] == "efficiency" and lines[-1].startswith("machine: cpu-2xAMD_EPYC; torch")


def test_the_markdown_report_has_verdicts_and_the_environment():
    out = markdown(report("straggler.json", "idle.json"))
    assert out.startswith("# cnnbench: multi-device speedup\n\n**Failed**: 1 check(s)\n\n- `test_train[")
    assert "ddp-cpu:0,1]`: speedup 1.83x -> 0.86x (-53%" in out
    assert "|---|---|---:|---:|---:|---:|---:|---:|---:|---|" in out
    assert "| regressed |" in out and "- environment changed: torch 2.0.0 -> 2.14.1" in out


def test_the_plot_is_a_png(tmp_path):
    plot(report("straggler.json", "idle.json"), tmp_path / "plots" / "speedup.png")
    height, width, _ = imread(tmp_path / "plots" / "speedup.png").shape
    assert (height, width) == (450, 550)
    assert [p.name for p in (tmp_path / "plots").iterdir()] == ["speedup.png"]  # no temporary file left


def test_files_are_replaced_whole(tmp_path):
    path = tmp_path / "report.md"
    write_atomically(path, b"old")
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new" and list(tmp_path.iterdir()) == [path]


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_file_follows_the_umask_and_a_replaced_one_keeps_its_mode(tmp_path, umask_022):
    """As open(path, "w") would: other tools read the report and the plot, not only their owner."""
    new, kept = tmp_path / "report.md", tmp_path / "speedup.png"
    write_atomically(new, b"new")
    kept.write_bytes(b"old")
    kept.chmod(0o640)
    write_atomically(kept, b"new")
    assert stat.S_IMODE(new.stat().st_mode) == 0o644 and stat.S_IMODE(kept.stat().st_mode) == 0o640


def test_the_plot_takes_two_device_sets_of_one_size(tmp_path):
    two_sets = report("straggler.json", "idle.json")
    name, info = next((n, i) for n, i in two_sets.results.by_name.items() if i["device_set"] == "cpu:0,1")
    twin = name.replace("cpu:0,1", "cpu:2,3")  # the same speedup on another pair, as ties happen
    two_sets.results.by_name[twin] = {**info, "device_set": "cpu:2,3"}
    two_sets.verdicts[twin] = replace(two_sets.verdicts[name], name=twin)
    plot(two_sets, tmp_path / "speedup.png")
    assert imread(tmp_path / "speedup.png").shape[:2] == (450, 550)
