"""The ``cnnbench`` command on the saved runs in tests/data (see the README there), and on copies of
them laid out in a temporary storage folder as the plugin saves runs. Nothing is run or timed."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cnnbench.cli.common import HANDFUL, WIDTH
from cnnbench.cli.main import main
from cnnbench.report.judgement import judge
from cnnbench.report.render import text
from cnnbench.report.table import aligned
from cnnbench.settings.gate import Gate
from cnnbench.settings.options import OPTION
from cnnbench.storage.saved import read_file

DATA = Path(__file__).parents[1] / "data"
ROOT = Path(__file__).parents[2]
INTEL = "cpu-2xIntel_R_Xeon_R_Processor"  # the paired runs' hardware class
AMD = "cpu-2xAMD_EPYC"  # the unpaired runs', saved by cnnbench before paired rounds
MACHINE = "Linux-CPython-3.11-64bit"  # pytest-benchmark's machine id folder
PAIRED = {"0001_idle": "paired_idle", "0002_idle2": "paired_idle2", "0003_straggler": "paired_straggler"}
REJECTED = "20261128_153136_straggler"


def save(hardware_folder: Path, name: str, source: str, folder: str = MACHINE, **environment) -> Path:
    """A copy of a run in tests/data as ``<class>/<folder>/<name>.json``, its environment changed as given."""
    saved = json.loads((DATA / f"{source}.json").read_text())
    saved["machine_info"]["cnnbench"].update(environment)
    path = hardware_folder / folder / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved))
    return path


@pytest.fixture
def storage(tmp_path) -> Path:
    """Two hardware classes: three paired runs; two unpaired runs and a rejected one."""
    root = tmp_path / ".benchmarks"
    for name, source in PAIRED.items():
        save(root / INTEL, name, source)
    save(root / AMD, "0001_idle", "idle")
    save(root / AMD, "0002_idle2", "idle2")
    save(root / AMD, REJECTED, "straggler", folder="rejected")
    return root


def cnnbench(capsys, *args) -> tuple[int, list[str], str]:
    """Exit status, stdout lines and stderr of one command."""
    status = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def usage_error(capsys, *args) -> str:
    """The one line a usage error prints, after checking that it is one: exit 4, nothing else said."""
    status, out, err = cnnbench(capsys, *args)
    assert (status, out) == (4, [])
    assert err.startswith("cnnbench: error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err.removeprefix("cnnbench: error: ").rstrip("\n")


def tables_fit(lines: list[str]) -> bool:
    """Table lines (indented) fit a 100-column terminal."""
    return all(len(line) <= WIDTH for line in lines if line.startswith("  "))


# compare


@pytest.mark.parametrize(("old", "new"), [("paired_idle", "paired_straggler"), ("idle", "straggler")])
def test_a_straggler_run_regresses_against_an_idle_one_and_exits_1(capsys, old, new):
    status, out, err = cnnbench(capsys, "compare", DATA / f"{old}.json", DATA / f"{new}.json", "--speedup-fail=20%")
    assert status == 1 and err == ""
    assert out[0] == f"run: {DATA / f'{new}.json'}"
    unpaired = " (baseline unpaired)" if old == "idle" else ""  # saved by cnnbench before paired rounds
    assert f"  ddp      cpu:0,1  regressed{unpaired}" in out
    assert f"baseline: {DATA / f'{old}.json'}" in out and "environment: unchanged since the baseline" in out
    assert out[-2].startswith("FAILED test_train[googlenet_cifar_small-bs32-fp32-ddp-cpu:0,1]: speedup ")
    assert out[-1].startswith("cnnbench: gate FAILED, 1 check(s): test_train[")
    assert tables_fit(out)


def test_it_prints_the_plugins_own_judgement(capsys):
    """One judge and one summary for the plugin and the command: nothing is worked out twice."""
    old, new = read_file(DATA / "paired_idle.json"), read_file(DATA / "paired_straggler.json")
    report = judge(new.run, old, Gate(0.2), new.environment, new.hardware, compared=True, storage=".benchmarks")
    _, out, _ = cnnbench(capsys, "compare", old.source, new.source, "--speedup-fail=20%")
    assert out[1:] == text(report, WIDTH)


def test_an_idle_rerun_passes_both_gates_with_exit_0(capsys):
    args = ("compare", DATA / "paired_idle.json", DATA / "paired_idle2.json", "--speedup-fail=20%")
    status, out, _ = cnnbench(capsys, *args, "--min-efficiency=0.8")
    assert status == 0
    assert "gate: speedup drop beyond 20% and beyond noise fails; efficiency below 80% beyond noise fails" in out
    assert out[-1] == "cnnbench: gate passed: 2 result(s) judged"


def test_the_efficiency_gate_alone_fails_a_straggler(capsys):
    args = ("compare", DATA / "paired_idle.json", DATA / "paired_straggler.json", "--min-efficiency=0.8")
    status, out, _ = cnnbench(capsys, *args)
    assert status == 1
    assert out[-1].startswith("cnnbench: gate FAILED, 1 check(s): test_train[")
    assert "is below the minimum 80%" in out[-1]


def test_without_a_gate_the_changes_are_shown_and_it_exits_0(capsys):
    status, out, _ = cnnbench(capsys, "compare", DATA / "idle.json", DATA / "straggler.json")
    assert status == 0
    assert any(line.startswith("  ddp      cpu:0,1  not gated (baseline unpaired)") for line in out)
    assert out[-1].startswith("cnnbench: no gate set (")


def test_run_numbers_and_globs_resolve_in_the_storage_as_the_plugin_resolves_them(capsys, storage):
    status, out, _ = cnnbench(capsys, "compare", "0001", "0003", "--storage", storage, "--hardware", INTEL)
    assert status == 0
    assert out[0] == f"run: {storage / INTEL / MACHINE / '0003_straggler.json'}"
    assert f"baseline: {storage / INTEL / MACHINE / '0001_idle.json'}" in out

    status, out, err = cnnbench(capsys, "compare", "0001", "*_idle", "--storage", storage, "--hardware", AMD)
    assert status == 0  # *_idle matches 0001_idle and 0002_idle2: the newest is taken, as the plugin takes it
    newest = storage / AMD / MACHINE / "0002_idle2.json"
    assert err == f"cnnbench: NEW '*_idle' matches 2 runs; taking the newest, {newest}\n"
    assert out[0].endswith("0002_idle2.json")


def test_a_rejected_run_is_never_found_by_name_but_reads_from_its_path(capsys, storage):
    assert usage_error(capsys, "compare", "0001", "*_straggler", "--storage", storage, "--hardware", AMD) == (
        f"NEW '*_straggler' matches no saved run in {storage}; there: {AMD}: 0001_idle.json, 0002_idle2.json"
    )
    rejected = storage / AMD / "rejected" / f"{REJECTED}.json"
    args = ("compare", "0001", rejected, "--storage", storage, "--hardware", AMD, "--speedup-fail=20%")
    status, out, _ = cnnbench(capsys, *args)
    assert status == 1 and out[-1].startswith("cnnbench: gate FAILED, 1 check(s)")


def test_runs_of_two_hardware_classes_are_refused_unless_allowed(capsys):
    old, new = DATA / "idle.json", DATA / "paired_idle2.json"
    assert usage_error(capsys, "compare", old, new) == (
        f"OLD {old} comes from {AMD}, NEW {new} from {INTEL}; speedups compare only within one hardware class "
        "(--any-hardware to compare anyway)"
    )
    status, out, _ = cnnbench(capsys, "compare", old, new, "--any-hardware")
    assert status == 0
    assert "environment changed: cpu.model AMD EPYC -> Intel(R) Xeon(R) Processor" in out


def test_a_baseline_without_a_fingerprint_compares_and_says_so(capsys, tmp_path):
    saved = json.loads((DATA / "paired_idle.json").read_text())
    del saved["machine_info"]["cnnbench"]  # as from a plain pytest-benchmark run
    old = tmp_path / "old.json"
    old.write_text(json.dumps(saved))
    status, out, _ = cnnbench(capsys, "compare", old, DATA / "paired_idle2.json")
    assert status == 0 and "environment changed: the baseline has no cnnbench fingerprint" in out
    assert usage_error(capsys, "compare", DATA / "paired_idle2.json", old) == (
        f"NEW {old}: no machine_info.cnnbench, so not a run saved by cnnbench"
    )


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{not json", "not a JSON file (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
        ('{"machine_info": {}}', "no 'benchmarks' list; expected a pytest-benchmark JSON file"),
        ('["a", "list"]', "no 'benchmarks' list; expected a pytest-benchmark JSON file"),
        ('{"benchmarks": []}', "no cnnbench result"),
        (
            '{"benchmarks": [{"fullname": "t::test_x", "extra_info": {}}]}',
            "no usable cnnbench result (t::test_x: no 'devices' in its extra_info)",
        ),
    ],
)
def test_an_unusable_file_is_a_one_line_usage_error(capsys, tmp_path, content, why):
    path = tmp_path / "0001_bad.json"
    path.write_text(content)
    assert usage_error(capsys, "compare", path, DATA / "paired_idle.json") == f"OLD {path}: {why}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "missing.json", "paired_idle.json"], "OLD missing.json: cannot read it (no such file)"),
        (["compare", "0099", "0003"], "OLD '0099' matches no saved run in {storage}; there: cpu-2xAMD_EPYC: 0001_"),
        (
            ["compare", "0001", "0099", "--hardware", INTEL],
            f"NEW '0099' matches no saved run in {{storage}}; there: {INTEL}: 0001_idle.json, 0002_idle2.json, 0003_",
        ),
        (["compare", "0001", "0002"], "NEW '0002' matches runs of 2 hardware classes: cpu-2xAMD_EPYC (0002_idle2"),
        (["compare", "a/b/c/d", "0001", "--hardware", AMD], "OLD 'a/b/c/d' matches no saved run in {storage}"),
        (["compare", "0001", "0002", "--hardware", "cpu-9xNone"], "--hardware cpu-9xNone: no saved runs of that"),
        (["compare", "0001"], "the following arguments are required: NEW (see cnnbench compare --help)"),
        (["compare", "0001", "0002", "--speedup-fail=abc"], "--speedup-fail: "),
        (["compare", "0001", "0002", "--min-efficiency=1.5"], "--min-efficiency: "),
        (["compare", "0001", "0002", "--report="], "--report: empty; valid: a file path"),
        (["compare", "0001", "0002", "--cnnbench-speedup-fail=20%"], "unrecognized arguments: --cnnbench-speedup"),
        ([], "the following arguments are required: COMMAND (see cnnbench --help)"),
        (["history", "--storage", "{storage}/nowhere"], "--storage {storage}/nowhere: no saved runs there"),
    ],
)
def test_usage_errors_are_one_line_and_exit_4(capsys, storage, monkeypatch, args, message):
    monkeypatch.chdir(DATA)  # file names are looked for here first
    args = [arg.format(storage=storage) for arg in args]
    if "--storage" not in args and args:
        args += ["--storage", str(storage)]
    assert usage_error(capsys, *args).startswith(message.format(storage=storage))


@pytest.mark.parametrize(("option", "bad"), [("speedup-fail", "abc"), ("min-efficiency", "1.5"), ("plot", " ")])
def test_a_bad_value_gets_the_plugins_message_from_its_parser(capsys, option, bad):
    with pytest.raises(ValueError) as theirs:  # what the plugin says after --cnnbench-<option>:
        OPTION[option].parse(bad)
    ours = usage_error(capsys, "compare", "0001", "0002", f"--{option}={bad}")
    assert ours == f"--{option}: {theirs.value} (see cnnbench compare --help)"


def test_the_report_and_the_plot_are_written(capsys, tmp_path):
    imread = pytest.importorskip("matplotlib.image").imread
    report, plot = tmp_path / "out" / "report.md", tmp_path / "out" / "speedup.png"
    args = ("compare", DATA / "paired_idle.json", DATA / "paired_straggler.json", "--speedup-fail=20%")
    status, out, _ = cnnbench(capsys, *args, "--report", report, "--plot", plot)
    assert status == 1
    assert out[-3:-1] == [f"cnnbench: report written to {report}", f"cnnbench: plot written to {plot}"]
    assert out[-1].startswith("cnnbench: gate FAILED")  # the gate's result is still said last
    written = report.read_text()
    assert written.startswith("# cnnbench: multi-device speedup\n\n**Failed**: 1 check(s)\n\n- `test_train[")
    assert "| ddp | cpu:0,1 |" in written and "| regressed |" in written
    assert imread(plot).shape[:2] == (450, 550)


def test_a_report_that_cannot_be_written_is_a_usage_error(capsys, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    report = blocked / "report.md"  # under a file, not a folder
    args = ("compare", DATA / "paired_idle.json", DATA / "paired_idle2.json", "--report", report)
    status, _, err = cnnbench(capsys, *args)
    assert status == 4 and err.startswith("cnnbench: error: could not write ") and "Traceback" not in err


@pytest.mark.parametrize("command", [["compare", "a.json", "b.json"], ["history"]])
def test_a_plot_without_matplotlib_is_a_usage_error(capsys, monkeypatch, command):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    error = usage_error(capsys, *command, "--plot=out.png")
    assert error == "--plot needs matplotlib; install it with: pip install 'cnnbench[plot]'"


# history


def test_history_shows_one_class_in_save_order_with_environment_changes(capsys, tmp_path, monkeypatch):
    folder = tmp_path / ".benchmarks" / INTEL
    save(folder, "0001_idle", "paired_idle")  # 22:49
    save(folder, "0002_idle2", "paired_idle2")  # 22:51
    upgraded = {"torch": "2.15.0+cu130", "nccl": "2.31.1"}
    save(folder, "0001_straggler", "paired_straggler", folder="Linux-CPython-3.12-64bit", **upgraded)  # 22:54
    save(folder, "0003_busy", "paired_machine_busy", **upgraded)  # 22:59
    monkeypatch.chdir(tmp_path)  # the default storage, .benchmarks
    status, out, err = cnnbench(capsys, "history")
    assert status == 0 and err == ""
    assert out[:3] == [
        f"{INTEL}: 4 saved run(s) in .benchmarks, oldest first",
        "googlenet_cifar_small-bs32-fp32",
        "  run             saved (UTC)       single cpu:0         ddp cpu:0       ddp cpu:0,1  env",
    ]
    rows = [line.split() for line in out[3:7]]
    assert [row[0] for row in rows] == ["0001_idle", "0002_idle2", "0001_straggler", "0003_busy"]  # by save time
    assert rows[0][1:] == ["2026-11-28", "22:49", "26.1", "img/s", "0.95x", "0.91..1.05", "1.79x", "1.76..1.88"]
    assert [row[-1] for row in rows] == ["1.76..1.88", "1.66..1.83", "[1]", "1.67..1.76"]
    assert out[7:] == [
        "  protected level, ddp cpu:0: 0.99x, the median of 4 runs (0001_idle..0003_busy)",
        "  protected level, ddp cpu:0,1: 1.75x, the median of 4 runs (0001_idle..0003_busy)",  # the straggler no level
        "environment changes (env), since the run before:",
        "  [1] 0001_straggler: nccl 2.30.7 -> 2.31.1; torch 2.14.1+cu130 -> 2.15.0+cu130",
    ]


def test_history_of_runs_saved_before_pairing_says_they_are_unpaired(capsys, storage):
    status, out, _ = cnnbench(capsys, "history", "--storage", storage, "--hardware", AMD)
    assert status == 0
    assert [line.split()[0] for line in out[3:5]] == ["0001_idle", "0002_idle2"]
    assert out[3].endswith("0.97x 0.95..1.00  1.83x 1.80..1.88")  # the README's figures for idle.json
    assert "  unpaired, saved before paired rounds (speedup from the reference test's rounds): 0001_idle," in out
    assert out[-1] == "(1 rejected run(s) left out: --rejected shows them)"
    assert not any(REJECTED in line for line in out)


def test_rejected_runs_are_shown_apart_and_marked_against_the_kept_run_before(capsys, storage):
    save(storage / AMD, REJECTED, "straggler", folder="rejected", driver="560.35.03")
    status, out, _ = cnnbench(capsys, "history", "--storage", storage, "--hardware", AMD, "--rejected")
    assert status == 0
    apart = out.index("rejected: 1 run(s) kept out of the baselines, oldest first")
    row = out[apart + 3]
    assert row.startswith(f"  {REJECTED}  2026-11-28 15:31    45.3 img/s  ") and row.endswith("[1]")
    assert "  [1] 20261128_153136_straggler: driver None -> 560.35.03" in out[apart:]
    assert not any(REJECTED in line for line in out[:apart])


def test_history_asks_which_class_when_several_are_stored(capsys, storage):
    assert usage_error(capsys, "history", "--storage", storage) == (
        f"{storage} holds 2 hardware classes: {AMD} (2 runs), {INTEL} (3 runs); choose one with --hardware"
    )
    assert usage_error(capsys, "history", "--storage", storage, "--hardware", "cuda-1xNone").startswith(
        f"--hardware cuda-1xNone: no saved runs of that class in {storage}; classes there: {AMD}, {INTEL}"
    )


def test_history_says_each_file_as_it_reads_many_and_skips_an_unreadable_one(capsys, tmp_path):
    folder = tmp_path / INTEL
    for number in range(1, HANDFUL + 2):
        save(folder, f"{number:04}_idle", "paired_idle")
    broken = folder / MACHINE / f"{HANDFUL + 2:04}_broken.json"
    broken.write_text("{not json")
    status, out, err = cnnbench(capsys, "history", "--storage", tmp_path)
    assert status == 0 and out[0] == f"{INTEL}: {HANDFUL + 1} saved run(s) in {tmp_path}, oldest first"
    said = err.splitlines()
    total = HANDFUL + 2
    assert said[0] == f"cnnbench: reading 1/{total}: {folder / MACHINE / '0001_idle.json'}"
    assert said[-2] == f"cnnbench: reading {total}/{total}: {broken}"
    assert said[-1].startswith(f"cnnbench: skipped {broken}: not a JSON file (")
    few = tmp_path / "few"
    save(few / INTEL, "0001_idle", "paired_idle")
    assert cnnbench(capsys, "history", "--storage", few)[2] == ""  # a handful or fewer: nothing said


def test_history_tables_fit_100_columns_by_stacking_columns(capsys, tmp_path):
    folder = tmp_path / INTEL
    saved = json.loads((DATA / "paired_idle.json").read_text())
    for bench in list(saved["benchmarks"]):  # as if three more device sets of two had run
        if bench["extra_info"]["device_set"] == "cpu:0,1":
            for other in ("cpu:2,3", "cpu:4,5", "cpu:6,7"):
                twin = json.loads(json.dumps(bench))
                twin["fullname"] = bench["fullname"].replace("cpu:0,1", other)
                twin["extra_info"]["device_set"] = other
                saved["benchmarks"].append(twin)
    (folder / MACHINE).mkdir(parents=True)
    (folder / MACHINE / "0001_wide.json").write_text(json.dumps(saved))
    status, out, _ = cnnbench(capsys, "history", "--storage", tmp_path)
    assert status == 0 and tables_fit(out)
    headers = [line.split() for line in out if line.startswith("  run ")]
    assert [header[:2] for header in headers] == [["run", "saved"], ["run", "ddp"]]  # the run names each row


def test_history_draws_a_plot(capsys, storage, tmp_path):
    imread = pytest.importorskip("matplotlib.image").imread
    path = tmp_path / "history.png"
    args = ("history", "--storage", storage, "--hardware", AMD, "--rejected", "--plot", path)
    status, out, _ = cnnbench(capsys, *args)
    assert status == 0 and out[-1] == f"cnnbench: plot written to {path}"
    assert imread(path).shape[:2] == (700, 700)


# the command itself


def test_a_long_verdict_wraps_inside_its_column():
    rows = [("wrapper", "verdict"), ("ddp", "improved: baseline may be stale, save a new one (baseline unpaired)")]
    lines = aligned(rows, words=(0, 1), width=40, keys=1)
    assert all(len(line) <= 40 for line in lines)
    assert lines[:2] == ["  wrapper  verdict", "  ddp      improved: baseline may be"]
    assert all(line.startswith("           ") for line in lines[2:])


def test_help_has_examples_a_usage_error_exits_4_and_the_parser_needs_no_torch():
    for command in (["--help"], ["compare", "--help"], ["history", "--help"], ["accept", "--help"]):
        shown = subprocess.run([sys.executable, "-m", "cnnbench", *command], capture_output=True, text=True, cwd=ROOT)
        assert shown.returncode == 0 and "examples:" in shown.stdout
    wrong = subprocess.run([sys.executable, "-m", "cnnbench", "compare"], capture_output=True, text=True, cwd=ROOT)
    assert wrong.returncode == 4 and wrong.stdout == "" and wrong.stderr.count("\n") == 1
    light = "import sys, cnnbench.cli.main; cnnbench.cli.main.make_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", light], capture_output=True, text=True, cwd=ROOT).stdout == "False\n"


def test_the_console_script_is_the_same_main():
    assert '[project.scripts]\ncnnbench = "cnnbench.cli.main:main"\n' in (ROOT / "pyproject.toml").read_text()
