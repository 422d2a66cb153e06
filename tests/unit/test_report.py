"""The summary, the Markdown report and the plot, from saved runs in tests/data."""

import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from matplotlib.image import imread

from cnnbench.report.files import write_atomically
from cnnbench.report.judgement import Report
from cnnbench.report.plot import plot
from cnnbench.report.render import markdown, text
from cnnbench.results.run import Run
from cnnbench.results.verdicts import outcome, verdicts
from cnnbench.settings.gate import Gate
from cnnbench.storage.saved import read_run

DATA = Path(__file__).parents[1] / "data"


def report(now: str, baseline: str | None) -> Report:
    saved = json.loads((DATA / now).read_text())
    run, _ = read_run(saved["benchmarks"])
    old = read_run(json.loads((DATA / baseline).read_text())["benchmarks"])[0] if baseline else None
    gate = Gate(0.2) if baseline else Gate()
    judged = verdicts(run, old, {}, gate)
    return Report(
        run=run,
        verdicts={v.result.name: v for v in judged},
        outcome=outcome(judged, gate, baseline_loaded=baseline is not None),
        environment=saved["machine_info"]["cnnbench"],
        hardware="cpu-2xAMD_EPYC",
        compared=baseline is not None,
        baseline=baseline,
        changes=["torch 2.0.0 -> 2.14.1"],
        gate=gate,
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
    assert table[3].endswith("regressed (baseline unpaired)")
    assert len({line.index("x ") for line in table[2:]}) == 1  # speedups right-aligned in one column
    assert "environment changed: torch 2.0.0 -> 2.14.1" in lines
    assert lines[-2].startswith("FAILED test_train[googlenet_cifar_small-bs32-fp32-ddp-cpu:0,1]: speedup 1.83x")
    assert lines[-1].startswith("cnnbench: gate FAILED, 1 check(s): test_train[")  # the verdict is read last


def test_without_a_baseline_the_summary_has_no_baseline_columns():
    lines = text(report("idle.json", None))
    assert lines[1].split()[-1] == "efficiency" and lines[-2].startswith("machine: cpu-2xAMD_EPYC; torch")
    assert (
        lines[-1] == "cnnbench: no gate set (--cnnbench-speedup-fail, --cnnbench-min-efficiency, --cnnbench-min-busbw, "
        "--cnnbench-history-fail)"
    )


def test_the_markdown_report_has_verdicts_and_the_environment():
    out = markdown(report("straggler.json", "idle.json"))
    assert out.startswith("# cnnbench: multi-device speedup\n\n**Failed**: 1 check(s)\n\n- `test_train[")
    assert "ddp-cpu:0,1]`: speedup 1.83x -> 0.86x (-53%" in out
    assert "|---|---|---:|---:|---:|---:|---:|---:|---:|---|" in out
    assert "| regressed (baseline unpaired) |" in out and "- environment changed: torch 2.0.0 -> 2.14.1" in out


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
    config = next(iter(two_sets.run.configs.values()))
    name, result = next((n, r) for n, r in config.results.items() if r.device_set == "cpu:0,1")
    twin = replace(result, name=name.replace("cpu:0,1", "cpu:2,3"), device_set="cpu:2,3")  # an equal speedup
    config.add(twin)
    two_sets.verdicts[twin.name] = replace(two_sets.verdicts[name], result=twin)
    plot(two_sets, tmp_path / "speedup.png")
    assert imread(tmp_path / "speedup.png").shape[:2] == (450, 550)


def test_a_speedup_beyond_the_ideal_is_called_implausible():
    assert not [line for line in text(report("idle.json", None)) if line.startswith("warning:")]
    flipped = report("idle.json", None)
    config = next(iter(flipped.run.configs.values()))
    reference = next(r for r in config.results.values() if r.is_reference)
    config.add(replace(reference, round_seconds=tuple(s * 3 for s in reference.round_seconds)))
    warned = [line for line in text(flipped) if line.startswith("warning:")]
    assert sorted(w.split(" measured")[0] for w in warned) == ["warning: ddp cpu:0", "warning: ddp cpu:0,1"]
    assert "beyond the ideal, so its reference was probably disturbed" in warned[0]


def test_real_data_adds_an_input_pipeline_table_within_100_columns():
    """Laid out with the published epoch times (5:25 on one GPU, 2:23 on three), not measured ones."""
    base = report("paired_idle.json", None)
    saved = {(r.wrapper, r.device_set): r for r in base.run.results.values()}
    n = len(saved["single", "cpu:0"].round_seconds)
    epoch = {"images_per_round": 128 * 391, "train_images": 128 * 391}
    single = replace(saved["single", "cpu:0"], round_seconds=(325.0,) * n, held_seconds=(299.0,) * n, **epoch)
    three = replace(
        saved["ddp", "cpu:0,1"],
        round_seconds=(143.0,) * n,
        held_seconds=(120.0,) * n,
        epoch_seconds=(143.0,),
        reference_seconds=(325.0,) * n,
        reference_images_per_round=128 * 391,
        **epoch,
    )
    lines = text(replace(base, run=Run([single, three]), verdicts={}), width=100)
    start = lines.index("  input pipeline (the loader vs the same steps on one batch held on the device):")
    assert lines[start + 1] == (
        "  wrapper  devices  loader img/s  held img/s  input share    95% CI  epoch  epoch from"
    )
    assert lines[start + 2].split() == ["single", "cpu:0", "154.0", "167.4", "8%", "8%..8%", "5:25", "median", "round"]
    assert lines[start + 3].split() == ["ddp", "cpu:0,1", "350.0", "417.1", "16%", "16%..16%", "2:23", "1", "timed"]
    assert all(len(line) <= 100 for line in lines[: start + 4])  # every table
    out = markdown(replace(base, run=Run([single, three]), verdicts={}))
    assert "| wrapper | devices | loader img/s | held img/s | input share | 95% CI | epoch | epoch from |" in out
    assert "|---|---|---:|---:|---:|---:|---:|---|" in out
