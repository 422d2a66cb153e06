"""The history gate and the change points of ``cnnbench history``, on real saved runs
(tests/data/history, see the README there) laid out in a temporary storage folder as the plugin saves
them, and on a ratchet derived from them. Only the last test runs anything: one short pytest run."""

import json
import os
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path

import pytest
from pytest_benchmark.utils import get_machine_id

from cnnbench.cli.main import main
from cnnbench.machine.devices import usable_cores
from cnnbench.machine.environment import fingerprint, hardware_class
from cnnbench.results.changes import change_points, noise
from cnnbench.storage.saved import ACCEPTED, is_accepted, read_file

DATA = Path(__file__).parents[1] / "data" / "history"
MACHINE = "Linux-CPython-3.11-64bit"  # pytest-benchmark's machine id folder
IDLE = ("0001_idle", "0002_idle", "0003_idle", "0007_idle", "0008_idle", "0009_idle")
LOADED = ("0004_loaded", "0005_loaded", "0006_loaded")  # core 1 busy: rank 1 of ddp cpu:0,1 straggles
TWO = "ddp-cpu:0,1"  # the configuration a busy core 1 slows
TWO_ID = "test_train[googlenet_cifar_small-bs32-fp32-ddp-cpu:0,1]"
HARDWARE = "cpu-2xAMD_EPYC"  # the class the runs were saved in


def saved(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def lay_out(storage: Path, runs: dict[str, dict]) -> Path:
    """Runs (by file name) saved as the plugin saves them; returns their folder."""
    folder = storage / HARDWARE / MACHINE
    folder.mkdir(parents=True, exist_ok=True)
    for name, run in runs.items():
        (folder / f"{name}.json").write_text(json.dumps(run))
    return folder


def real(storage: Path, *names: str) -> Path:
    return lay_out(storage, {name: saved(name) for name in names})


RATCHET = 18  # six levels of three runs


def ratchet(storage: Path, count: int = RATCHET) -> list[str]:
    """Five 4% drops of ddp cpu:0,1, three runs at each level (the first ``count`` runs): the real
    idle runs in turn, its round times multiplied by 1/0.96^k at the k-th level, so its paired
    speedup is 0.96^k of the real one."""
    runs, start = {}, datetime(2026, 12, 6, tzinfo=timezone.utc)
    for n in range(count):
        run = saved(IDLE[n % len(IDLE)])
        for bench in run["benchmarks"]:
            if bench["param"].endswith(TWO):
                info = bench["extra_info"]
                info["round_seconds"] = [seconds / 0.96 ** (n // 3) for seconds in info["round_seconds"]]
        run["datetime"] = (start + timedelta(hours=n)).isoformat()
        runs[f"{n + 1:04}_ratchet"] = run
    lay_out(storage, runs)
    return list(runs)


def cnnbench(capsys, *args) -> tuple[int, list[str], str]:
    status = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def row(lines: list[str], devices: str) -> str:
    """The gate's table row of ddp on a device set."""
    return next(line for line in lines if line.startswith(f"  ddp      {devices} "))


def verdict_file(path: Path) -> dict[str, dict]:
    """The verdict file's results by test id, without the file name."""
    return {r["test"].rpartition("::")[2]: r for r in json.loads(path.read_text())["results"]}


def speedups(*names: str) -> list[float]:
    """ddp cpu:0,1's paired speedups in the saved runs, as the history reads them."""
    out = []
    for name in names:
        run = read_file(DATA / f"{name}.json").run
        (result,) = [r for r in run.results.values() if r.name.endswith(TWO_ID)]
        out.append(run.speedup_stats(result).speedup)
    return out


# change points


def test_the_recorded_series_steps_down_where_core_1_was_loaded_and_back_up_after():
    values = speedups(*sorted([*IDLE, *LOADED]))
    down, up = change_points(values, noise(values))
    assert (down.index, up.index) == (3, 6)  # 0004_loaded, the first run with core 1 busy; 0007_idle
    assert down.change < -0.3 and up.change > 0.3 and down.p_value < 0.05 and up.p_value < 0.05
    assert change_points(values, noise(values)) == [down, up]  # deterministic


def test_a_new_level_shows_once_it_held_for_three_runs():
    values = speedups(*sorted([*IDLE, *LOADED]))
    assert [point.index for point in change_points(values[:5], noise(values[:5]))] == []
    assert [point.index for point in change_points(values[:6], noise(values[:6]))] == [3]
    # two runs back up: not yet a level, and they blur the one before (p > 0.05), so nothing shows
    assert [point.index for point in change_points(values[:8], noise(values[:8]))] == []


def test_one_disturbed_run_is_no_level():
    values = speedups(*IDLE[:3], LOADED[0], *IDLE[3:])
    assert change_points(values, noise(values)) == []


def test_history_shows_change_points_with_the_environment_at_them_in_text_and_plot(capsys, tmp_path, monkeypatch):
    folder = real(tmp_path, *IDLE, *LOADED)
    first_loaded = json.loads((folder / "0004_loaded.json").read_text())
    first_loaded["machine_info"]["cnnbench"]["torch"] = "2.15.0"  # as if torch had changed there
    (folder / "0004_loaded.json").write_text(json.dumps(first_loaded))
    figures = []
    monkeypatch.setattr("cnnbench.report.history.save_png", lambda figure, path: figures.append(figure))
    status, out, _ = cnnbench(capsys, "history", "--storage", tmp_path, "--plot", tmp_path / "history.png")
    assert status == 0
    text = "\n".join(out).replace("\n      ", " ")  # a long line goes on, indented, on the next
    assert "  change point, ddp cpu:0,1, at 0004_loaded: 1.71x -> 0.88x (-49%, p=0.0013); [1] torch " in text
    assert "  change point, ddp cpu:0,1, at 0007_idle: 0.88x -> 1.71x (+94%, p=0.0025); environment unchanged" in text
    assert "change points: a level holds at least 3 runs; p: Welch's t-test between two levels" in out
    assert "  protected level, ddp cpu:0,1: " in "\n".join(out)
    (figure,) = figures
    speedup_axes = figure.axes[0]
    dotted = [line for line in speedup_axes.lines if line.get_linestyle() == ":"]
    dashed = [line for line in speedup_axes.lines if line.get_linestyle() == "--" and line.get_color() != "gray"]
    assert len(dotted) == 2  # the change points
    assert len(dashed) == 2  # a protected level for each of ddp cpu:0 and ddp cpu:0,1
    assert any(text.get_text().startswith("-") for text in speedup_axes.texts)  # its size


# the history gate


def test_a_lasting_step_down_fails_the_history_gate(capsys, tmp_path):
    real(tmp_path, *IDLE[:3], *LOADED)
    status, out, _ = cnnbench(capsys, "history", "--storage", tmp_path, "--gate=10%")
    assert status == 1
    assert "history gate: the newest run, 0006_loaded, against the runs before it" in out
    assert row(out, "cpu:0,1").endswith("regressed")
    assert out[-2].startswith(f"FAILED {TWO_ID}: speedup ")
    # the two runs at the new level are not a level yet: they count with the one before, whose median they do not move
    assert out[-2].endswith("dropped more than 10% below the protected level (runs 0001_idle..0005_loaded)")
    assert "protected level, ddp cpu:0,1: 1.67x, the median of 5 runs (0001_idle..0005_loaded)" in out
    assert out[-1].startswith("cnnbench: gate FAILED, 1 check(s): ")


def test_a_ratchet_of_five_4_percent_drops_passes_todays_gate_and_fails_the_history_gate(capsys, tmp_path):
    names = ratchet(tmp_path)
    folder = tmp_path / HARDWARE / MACHINE
    for old, new in pairwise(names):  # main saves each run that held as the next baseline
        args = ("compare", folder / f"{old}.json", folder / f"{new}.json", "--speedup-fail=10%")
        status, out, _ = cnnbench(capsys, *args)
        assert status == 0, (old, new, out[-3:])
    status, out, _ = cnnbench(capsys, "history", "--storage", tmp_path, "--gate=10%")
    assert status == 1
    assert row(out, "cpu:0,1").endswith("regressed")
    level = next(line for line in out if line.startswith("protected level, ddp cpu:0,1: "))
    assert level.startswith("protected level, ddp cpu:0,1: 1.71x, the median of ")  # the first, unscaled runs
    assert level.endswith(" (0001_ratchet..0005_ratchet)")


def test_the_ratchet_fails_the_history_gate_once_the_drops_add_up_beyond_the_threshold(capsys, tmp_path):
    failed = []
    for count in range(4, RATCHET + 1):  # the history as it grew, the newest run judged each time
        ratchet(tmp_path / str(count), count)
        status, _, _ = cnnbench(capsys, "history", "--storage", tmp_path / str(count), "--gate=10%")
        failed.append(status == 1)
    levels = [(count - 1) // 3 for count in range(4, RATCHET + 1)]  # of each newest run
    assert not any(fail for fail, level in zip(failed, levels, strict=True) if level < 3)  # within 0.96^2 = -7.8%
    assert all(fail for fail, level in zip(failed, levels, strict=True) if level >= 4)  # beyond 0.96^4 = -15%


def test_one_disturbed_run_in_the_middle_moves_neither_the_verdict_nor_the_level(capsys, tmp_path):
    verdicts = {}
    for case, names in {"idle": IDLE, "disturbed": (*IDLE[:3], LOADED[0], *IDLE[3:])}.items():
        storage = tmp_path / case
        real(storage, *names)
        status, _, _ = cnnbench(capsys, "history", "--storage", storage, "--gate=10%", "--verdict-json", storage / "v")
        verdicts[case] = (status, verdict_file(storage / "v"))
    (idle_status, idle), (disturbed_status, disturbed) = verdicts.values()
    assert idle_status == disturbed_status == 0
    for test, result in idle.items():
        assert disturbed[test]["verdict"] == result["verdict"] == "held"
        level, other = result["protected_level"]["speedup"], disturbed[test]["protected_level"]["speedup"]
        assert other == pytest.approx(level, rel=0.01)
    # against one baseline, the run after the disturbed one reads differently with it as the baseline
    said = {}
    for baseline in ("0003_idle", "0004_loaded"):
        path = tmp_path / f"{baseline}.verdicts"
        cnnbench(
            capsys,
            "compare",
            DATA / f"{baseline}.json",
            DATA / "0007_idle.json",
            "--speedup-fail=10%",
            "--verdict-json",
            path,
        )
        said[baseline] = verdict_file(path)[TWO_ID]["verdict"]
    assert said == {"0003_idle": "held", "0004_loaded": "improved: baseline may be stale, save a new one"}


def test_a_short_history_passes_unjudged_and_says_so(capsys, tmp_path):
    real(tmp_path, *IDLE[:3])
    status, out, _ = cnnbench(capsys, "history", "--storage", tmp_path, "--gate=10%")
    assert status == 0
    assert "not judged: test_train[googlenet_cifar_small-bs32-fp32-ddp-cpu:0,1]: history too short (2 < 3 runs)" in out
    assert out[-1] == "cnnbench: gate passed: history too short to judge (2 < 3 saved runs), so no speedup was judged"


def test_a_history_that_never_ran_the_test_fails_for_judging_nothing(capsys, tmp_path):
    newest = saved(IDLE[3])
    for bench in newest["benchmarks"]:  # as if the tests had been renamed
        bench["fullname"] = bench["fullname"].replace("test_train", "test_training")
    lay_out(tmp_path, {name: saved(name) for name in IDLE[:3]} | {IDLE[3]: newest})
    status, out, _ = cnnbench(capsys, "history", "--storage", tmp_path, "--gate=10%")
    assert status == 1
    assert out[-1].startswith("cnnbench: gate FAILED: no speedup was compared with the history's protected level (")


# accepting a level


def test_an_accepted_run_starts_a_new_level(capsys, tmp_path):
    folder = real(tmp_path, *IDLE[:3], *LOADED)
    os.chmod(folder / "0004_loaded.json", 0o640)
    status, out, _ = cnnbench(capsys, "history", "--storage", tmp_path, "--accept=0004", "--gate=10%")
    assert status == 0
    assert out[0] == f"cnnbench: {folder / '0004_loaded.json'} marked accepted: the history gate's protected level " + (
        "starts afresh from it"
    )
    assert "accepted, each starting a new level: 0004_loaded" in out
    assert out[-1] == (
        "cnnbench: gate passed: history too short to judge (2 < 3 saved runs since the accepted run 0004_loaded), "
        "so no speedup was judged"
    )
    marked, before = json.loads((folder / "0004_loaded.json").read_text()), saved("0004_loaded")
    assert set(marked) == {*before, ACCEPTED} and marked["benchmarks"] == before["benchmarks"]
    assert is_accepted(read_file(folder / "0004_loaded.json"))
    assert not is_accepted(read_file(folder / "0005_loaded.json"))
    assert (folder / "0004_loaded.json").stat().st_mode & 0o777 == 0o640


def test_an_accepted_newest_run_shows_its_drop_without_failing(capsys, tmp_path):
    real(tmp_path, *IDLE[:3], *LOADED)
    status, out, _ = cnnbench(capsys, "history", "--storage", tmp_path, "--accept=0006_loaded", "--gate=10%")
    assert status == 0
    assert "  ddp      cpu:0,1  regressed; accepted as a new level" in out  # the verdict column, stacked below
    assert "accepted: this run starts a new level; the history gate protects it once it holds" in out


def test_accept_and_verdict_json_usage_errors(capsys, tmp_path):
    folder = real(tmp_path, *IDLE[:3])
    (folder.parent / "rejected").mkdir()
    rejected = folder.parent / "rejected" / "20261205_142255_idle.json"
    rejected.write_text((folder / "0001_idle.json").read_text())
    for args, said in (
        (["--accept", rejected], f"--accept {rejected}: not a kept run of {HARDWARE} in {tmp_path}; valid: "),
        (["--verdict-json=v.json"], "--verdict-json writes the history gate's verdicts; valid: with --gate=PCT"),
        (["--gate=10"], "--gate: got '10'; valid: a percentage such as 20% or a fraction such as 0.2, in (0, 1]"),
    ):
        status, out, err = cnnbench(capsys, "history", "--storage", tmp_path, *args)
        assert (status, out) == (4, []) and err.startswith(f"cnnbench: error: {said}"), err


# what CI reads


def test_the_verdict_file_and_github_annotations(capsys, tmp_path, monkeypatch):
    real(tmp_path, *IDLE[:3], *LOADED)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    path = tmp_path / "ci" / "verdicts.json"
    status, out, _ = cnnbench(capsys, "history", "--storage", tmp_path, "--gate=10%", "--verdict-json", path)
    assert status == 1
    document = json.loads(path.read_text())
    assert list(document) == ["schema", "outcome", "gate", "hardware", "baseline", "history", "results"]
    assert document["schema"] == 1 and document["hardware"] == HARDWARE and document["baseline"] is None
    assert document["gate"] == {"speedup_fail": None, "min_efficiency": None, "min_busbw": None, "history_fail": 0.1}
    assert document["history"] == {"runs": ["0001_idle", "0002_idle", "0003_idle", "0004_loaded", "0005_loaded"]}
    assert document["outcome"]["failed"] is True and document["outcome"]["line"] == out[-2]  # then the annotation
    (failure,) = document["outcome"]["failures"]
    two = verdict_file(path)[TWO_ID]
    assert list(two) == [
        "test",
        "model_config",
        "wrapper",
        "devices",
        "speedup",
        "speedup_ci",
        "efficiency",
        "baseline",
        "protected_level",
        "change",
        "change_ci",
        "verdict",
        "judged",
        "failures",
    ]
    assert two["test"] == failure["test"] == f"perf_tests/test_training.py::{TWO_ID}"
    assert two["verdict"] == "regressed" and two["judged"] is True and two["failures"] == [failure["why"]]
    assert two["protected_level"]["runs"] == ["0001_idle", "0002_idle", "0003_idle", "0004_loaded", "0005_loaded"]
    assert two["change"] < -0.1 and two["change_ci"][1] < 0 and two["baseline"] is None
    assert out[-1] == (  # GitHub's escaping: % in the message, and : and , too in the title
        "::error title=cnnbench%3A test_train[googlenet_cifar_small-bs32-fp32-ddp-cpu%3A0%2C1]::"
        + failure["why"].replace("%", "%25")
    )
    monkeypatch.delenv("GITHUB_ACTIONS")
    _, quiet, _ = cnnbench(capsys, "history", "--storage", tmp_path, "--gate=10%")
    assert not any(line.startswith("::") for line in quiet)


def test_compare_writes_the_same_verdict_file_against_one_baseline(capsys, tmp_path):
    path = tmp_path / "v.json"
    args = ("compare", DATA / "0003_idle.json", DATA / "0006_loaded.json", "--speedup-fail=10%", "--verdict-json", path)
    status, out, _ = cnnbench(capsys, *args)
    document = json.loads(path.read_text())
    assert document["baseline"] == str(DATA / "0003_idle.json") and document["history"] is None
    assert document["outcome"]["failed"] is (status == 1)
    two = verdict_file(path)[TWO_ID]
    assert two["baseline"] == pytest.approx(speedups("0003_idle")[0]) and two["protected_level"] is None
    assert status == 1 and two["verdict"] == "regressed"
    assert f"FAILED {TWO_ID}: {two['failures'][0]}" in out


# the plugin


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--cnnbench-history-fail=10%", "--cnnbench-speedup-fail=10%", "--benchmark-compare"],
            "ERROR: --cnnbench-history-fail: judges against the history's protected level instead of one baseline; "
            "valid: without --cnnbench-speedup-fail",
        ),
        (["--cnnbench-history-fail=ten"], "ERROR: --cnnbench-history-fail: got 'ten'; valid: a percentage *"),
        (
            ["--cnnbench-accept-level"],
            "ERROR: cnnbench: --cnnbench-accept-level marks this run accepted as it is saved; valid: with "
            "--benchmark-save=NAME or --benchmark-autosave",
        ),
    ],
)
def test_plugin_option_errors(suite, args, message):
    result = suite.runpytest("--collect-only", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


@pytest.mark.skipif(len(usable_cores()) != 2, reason="the saved runs' workload: one thread per rank, on 2 cores")
def test_the_plugin_judges_a_run_against_its_saved_history(suite):
    """A short real run of ddp cpu:0,1 with core 1 busy, judged against the saved idle runs, which are
    copied into this machine's storage with the test file's path as pytester names it."""
    from test_gate import busy_core

    folder = suite.path / ".benchmarks" / hardware_class(fingerprint(), "cpu") / get_machine_id()
    runs = {}
    for name in IDLE[:3]:
        run = saved(name)
        for bench in run["benchmarks"]:
            bench["fullname"] = bench["fullname"].removeprefix("perf_tests/")
        runs[name] = run
    folder.mkdir(parents=True)
    for name, run in runs.items():
        (folder / f"{name}.json").write_text(json.dumps(run))
    with busy_core():
        result = suite.runpytest(
            "--cnnbench-devices=cpu:0,1",
            "--cnnbench-wrappers=ddp",
            "--cnnbench-steps=1",
            "--cnnbench-rounds=3",
            "--cnnbench-warmup=1",
            "--cnnbench-history-fail=10%",
            "--cnnbench-verdict-json=v.json",
            "--benchmark-autosave",
        )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*level  change  * verdict",
            "  ddp      cpu:0,1 * regressed",
            f"history: 3 saved run(s) of {hardware_class(fingerprint(), 'cpu')} in *",
            "protected level, ddp cpu:0,1: *x, the median of 3 runs (0001_idle..0003_idle)",
            "cnnbench: verdicts written to v.json",
            "cnnbench: this run regressed, so it was not saved*",
            "cnnbench: gate FAILED, 1 check(s): *below the protected level (runs 0001_idle..0003_idle)",
        ]
    )
    result.stderr.fnmatch_lines(["Performance has regressed:", "*ddp-cpu:0,1* - speedup *below the protected level*"])
    assert json.loads((suite.path / "v.json").read_text())["outcome"]["failed"] is True
    assert sorted(p.name for p in folder.glob("*.json")) == [f"{name}.json" for name in IDLE[:3]]


def test_the_plugin_marks_an_accepted_run_as_it_saves_it(suite):
    result = suite.runpytest(
        "--cnnbench-models=linear",
        "--cnnbench-devices=cpu:0",
        "--cnnbench-wrappers=single,ddp",
        "--cnnbench-steps=1",
        "--cnnbench-rounds=3",
        "--cnnbench-warmup=1",
        "--cnnbench-history-fail=10%",
        "--cnnbench-accept-level",
        "--benchmark-save=accepted",
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "accepted: this run starts a new level; the history gate protects it once it holds",
            "cnnbench: gate passed: history too short to judge (0 < 3 saved runs), so no speedup was judged",
        ]
    )
    (path,) = (suite.path / ".benchmarks").glob("*/*/0001_accepted.json")
    assert is_accepted(read_file(path))
