"""The docs as a user meets them: a short README whose sample output is what the code prints, pages
generated from the code that are current, links and anchors that resolve, and every command in a
fenced block run as written, or as near as this machine allows.

How a command is checked, by what it needs:

- ``pytest perf_tests ...`` (also ``python -m pytest``, after ``$``, ``taskset`` or variables): run
  in-process with ``--collect-only`` in a sandbox holding perf_tests/ and a storage of saved runs
  of this machine's hardware class named as the docs name them (``main``, ``before-upgrade``).
  Options, their values and their combinations are checked as a run checks them, before anything
  runs; it must not exit 4 (usage error) or print a traceback.
- ``cnnbench ...``: parsed by the command's own parser; then run for real in the sandbox, except
  ``join`` (it waits for a controller) and lines naming a GPU hardware class, and must exit 0 or 1.
- ``python -m cnnbench.bare ...`` and ``torchrun ... -m cnnbench.bare.all_reduce ...``: parsed by
  their own parsers (a real run trains or needs several ranks).
- ``python tests/...``: run.

What this machine lacks is stood in for, the rest of the line kept: CUDA sets become CPU sets of
this machine's cores (and a line that names no set gets CPU sets too, the class of the sandbox's
saved runs, on any host), the docs' data folders a tiny CIFAR-10 set in the real format, the docs'
storage folder the sandbox's, the other node's address 127.0.0.1.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from cnnbench.report.tables import SPEEDUP, SPLIT
from cnnbench.settings.gate import gate_flags

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
HISTORY = ROOT / "tests" / "data" / "history"


def page_id(page: Path) -> str:
    return page.name


def test_the_readme_is_short():
    assert len(README.splitlines()) <= 200


# Links and anchors


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found, block = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            block = not block
        elif not block and line.startswith("#"):
            found.add(slug(line.lstrip("#")))
    return found


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_relative_link_and_anchor_resolves(page):
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        assert path.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor and path.suffix == ".md":
            assert anchor in anchors(path), f"{page.name} links to {target}: {path.name} has no such heading"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_test_file_and_option_the_docs_name_exists(page):
    from cnnbench.settings.options import OPTIONS

    text = page.read_text()
    missing = [name for name in re.findall(r"\btests/[\w/]+\.py\b", text) if not (ROOT / name).exists()]
    assert not missing, f"{page.name} names {missing}"
    flags = {option.flag for option in OPTIONS}
    unknown = sorted({flag for flag in re.findall(r"--cnnbench-[a-z][a-z-]*[a-z]", text) if flag not in flags})
    assert not unknown, f"{page.name} names options that do not exist: {unknown}"


# What the code prints and holds


def judged(now: str, baseline: str | None = None, **gate):
    from cnnbench.report.judgement import judge
    from cnnbench.settings.gate import Gate
    from cnnbench.storage.saved import read_file

    new = read_file(HISTORY / now)
    old = read_file(HISTORY / baseline) if baseline else None
    return judge(new.run, old, Gate(**gate), new.environment, new.hardware, compared=old is not None)


def test_the_readme_sample_shows_the_headers_and_last_line_the_code_prints():
    from cnnbench.report.render import text

    sample = README.split("cnnbench: multi-device speedup", 1)[1].split("```", 1)[0].splitlines()
    printed = text(judged("0001_idle.json"))  # a saved run with both tables, no gate
    for lines in (sample, printed):
        assert [line.split() for line in lines if line.strip().startswith("wrapper")] == [
            " ".join(column.name for column in SPEEDUP).split(),
            [*" ".join(column.name for column in SPLIT).split(), "busbw"],
        ]
    caption = next(line for line in printed if "where the time went" in line)
    assert caption in sample
    assert sample[-1] == printed[-1] == f"cnnbench: no gate set ({', '.join(gate_flags())})"


def form(line: str) -> str:
    """A last line with its figures and names taken out: what the README shows of it."""
    return re.sub(r"\d+", "N", line.split(": test_train[")[0])


def test_the_readme_shows_the_gates_last_lines_as_the_code_prints_them():
    passed = judged("0002_idle.json", "0001_idle.json", speedup_fail=0.2).outcome.line
    failed = judged("0004_loaded.json", "0001_idle.json", speedup_fail=0.2).outcome.line
    assert re.fullmatch(r"cnnbench: gate passed: \d+ result\(s\) judged", passed), passed
    assert failed.startswith("cnnbench: gate FAILED, 1 check(s): test_train[")
    for line in (passed, failed):
        assert f"`{form(line)}" in README, f"the README does not show {form(line)!r}"


def test_the_generated_pages_are_current():
    # A fresh interpreter: test modules collected beside this one register models and wrappers.
    done = subprocess.run([sys.executable, "docs/generate.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_saved_key_is_on_the_saved_results_page():
    from cnnbench.storage import schema

    page = (ROOT / "docs" / "saved-results.md").read_text()
    keys = {field.key for field in schema.FIELDS} | set(re.findall(r'"(\w+)"', inspect.getsource(schema.derived)))
    missing = sorted(key for key in keys if f"`{key}`" not in page)
    assert not missing, f"docs/saved-results.md does not name {missing} (see cnnbench/storage/schema.py)"


def test_the_gpu_workflows_are_one_workflow():
    blocks = [
        block for page in PAGES for block in re.findall(r"```yaml\n(name: gpu-scaling\n.*?)```", page.read_text(), re.S)
    ]
    assert len(blocks) >= 2 and len(set(blocks)) == 1, "the gpu-scaling workflows in README.md and docs/ differ"


def samples() -> list[tuple[str, str, list[str]]]:
    """Every ``$ cnnbench ...`` line in a fenced block with the output the page shows under it."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```\n(\$ cnnbench .*?)```", page.read_text(), re.S):
            line, *output = block.rstrip("\n").split("\n")
            found.append((page.name, line.removeprefix("$ "), output))
    return found


@pytest.mark.parametrize(("page", "line", "output"), samples(), ids=lambda value: str(value)[:60])
def test_the_sample_outputs_are_what_the_commands_print_today(page, line, output, tmp_path, monkeypatch, capsys):
    """Run where the page says: the repository's root, with a storage holding copies of the four
    paired runs of tests/data saved in the order they were made (docs/compare-and-history.md)."""
    from cnnbench.cli.main import main

    folder = tmp_path / ".benchmarks" / "cpu-2xIntel_R_Xeon_R_Processor" / "Linux-CPython-3.11-64bit"
    folder.mkdir(parents=True)
    for number, (source, name) in enumerate(
        [("idle", "idle"), ("idle2", "idle2"), ("straggler", "straggler"), ("machine_busy", "busy")], 1
    ):
        shutil.copy(ROOT / "tests" / "data" / f"paired_{source}.json", folder / f"{number:04}_{name}.json")
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    monkeypatch.chdir(tmp_path)
    main(shlex.split(line)[1:])
    assert capsys.readouterr().out.splitlines() == output, f"{page}: {line} prints otherwise today"


# Every command in a fenced block

ENVIRONMENT = re.compile(r"^(?:\$ |- run: |taskset -c \d+ |[A-Z_]+=\S* )+")
PLACEHOLDER = re.compile(r"\[|\b(?:HOST|PORT|RUN|OLD|NEW|PCT|CLASS)\b")
STARTS = ("pytest perf_tests", "python -m pytest ", "cnnbench ", "python -m cnnbench", "torchrun ", "python tests/")


def commands() -> list[tuple[str, str]]:
    """Every command line in the fenced blocks of the docs, continued lines joined, comments and
    prompts dropped; synopses (``[--option]``, ``OLD NEW``) left out."""
    found = []
    for page in PAGES:
        block = False
        for line in page.read_text().replace("\\\n", " ").splitlines():
            if line.strip().startswith("```"):
                block = not block
                continue
            line = ENVIRONMENT.sub("", line.split(" #", 1)[0].strip())
            if block and line.startswith(STARTS) and not PLACEHOLDER.search(line):
                found.append((page.name, " ".join(line.split())))
    return found


COMMANDS = commands()


def test_the_docs_hold_the_commands_this_test_runs():
    kinds = {line.split()[0] + (" " + line.split()[1] if line.startswith("python") else "") for _, line in COMMANDS}
    assert {"pytest", "cnnbench", "python -m", "torchrun", "python tests/cifar_files.py"} <= kinds, kinds
    assert sum(line.startswith(("pytest", "python -m pytest")) for _, line in COMMANDS) >= 15


def cpu_sets(text: str) -> str:
    """``cuda:0 cuda:0,1,2 2x cuda:0,1`` as CPU sets this machine has: each as many devices as it
    names, up to the usable cores; a set across nodes keeps its node count."""
    from cnnbench.machine.devices import usable_cores

    cores, sets = len(usable_cores()), []
    for count, devices in re.findall(r"(\d+x\s*)?cuda:([\d,]+)", text):
        one = "cpu:" + ",".join(str(i) for i in range(min(len(devices.split(",")), cores)))
        shown = f"{count.strip()} {one}" if count else one
        if shown not in sets:
            sets.append(shown)
    return " ".join(sets) if sets else text


def stand_in(line: str, cifar: Path) -> list[str]:
    """The line's words, with what this machine lacks stood in for."""
    line = line.replace('"$(nproc)"', str(os.cpu_count() or 1))
    line = re.sub(r"/data/cifar10|/tmp/tiny-cifar", str(cifar), line)
    line = line.replace("/var/lib/cnnbench/benchmarks", ".benchmarks").replace("10.0.0.1", "127.0.0.1")
    words = shlex.split(line)
    for i, word in enumerate(words):
        if word.startswith("--cnnbench-devices=") and "cuda" in word:
            words[i] = "--cnnbench-devices=" + cpu_sets(word.partition("=")[2])
    return words


@pytest.fixture(scope="module")
def storage_runs(tmp_path_factory) -> Path:
    """A storage folder of this machine's hardware class: real saved runs (tests/data/history) with
    this machine's fingerprint, saved as the docs name them, and one rejected ``main`` run."""
    from pytest_benchmark.utils import get_machine_id

    from cnnbench.machine.environment import fingerprint, hardware_class

    environment = fingerprint()
    hardware = hardware_class(environment, "cpu")
    root = tmp_path_factory.mktemp("storage") / ".benchmarks"
    kept, rejected = root / hardware / get_machine_id(), root / hardware / "rejected"
    kept.mkdir(parents=True)
    rejected.mkdir()
    names = {"0001_idle.json": kept / "0001_main.json", "0002_idle.json": kept / "0002_before-upgrade.json"}
    names |= {"0003_idle.json": kept / "0003_main.json", "0004_loaded.json": rejected / "20261205_101500_main.json"}
    for source, target in names.items():
        saved = json.loads((HISTORY / source).read_text())
        saved["machine_info"]["cnnbench"] = environment
        target.write_text(json.dumps(saved))
    nodes = {**environment, "node_count": 2}  # runs whose sets span two nodes: a class of their own
    folder = root.parent / "nodes" / ".benchmarks" / hardware_class(nodes, "cpu") / get_machine_id()
    folder.mkdir(parents=True)
    saved = json.loads((HISTORY / "0001_idle.json").read_text())
    saved["machine_info"]["cnnbench"] = nodes
    (folder / "0001_main.json").write_text(json.dumps(saved))
    return root


@pytest.fixture
def sandbox(tmp_path, storage_runs, monkeypatch) -> Path:
    """A working folder like the repository's root: perf_tests/, tests/ (read through a link), a
    storage of saved runs, and CPU sets where a line names none (the storage's class, on any host)."""
    shutil.copytree(ROOT / "perf_tests", tmp_path / "perf_tests")
    (tmp_path / "pytest.ini").write_text(f"[pytest]\ncnnbench_devices = {cpu_sets('cuda:0 cuda:0,1')}\n")
    shutil.copytree(storage_runs, tmp_path / ".benchmarks")
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def pytest_lines() -> list[tuple[str, str]]:
    return [(page, line) for page, line in COMMANDS if line.startswith(("pytest", "python -m pytest"))]


@pytest.mark.parametrize(("page", "line"), pytest_lines())
def test_every_pytest_line_collects(page, line, pytester, sandbox, storage_runs, tiny_cifar, monkeypatch):
    words = stand_in(line, tiny_cifar)
    if "-p" in words:  # a plugin module of the user's: tested below, in a process of its own
        pytest.skip("loads a module of the user's: see test_the_extending_example_loads_as_a_plugin")
    words = words[3:] if words[0] == "python" else words[1:]
    if "-n" in words:  # xdist: collect here, start no workers
        words[words.index("-n") + 1] = "0"
    shutil.copytree(sandbox, pytester.path, dirs_exist_ok=True, symlinks=True)
    if any(word.startswith("--cnnbench-rdzv") for word in words):  # and a baseline of the two-node class
        shutil.copytree(storage_runs.parent / "nodes", pytester.path, dirs_exist_ok=True)
    monkeypatch.chdir(pytester.path)
    monkeypatch.setenv("PYTEST_ADDOPTS", "-W ignore::pytest.PytestAssertRewriteWarning")
    with warnings.catch_warnings():  # pytest-benchmark warns that a collect-only run saves nothing
        warnings.simplefilter("ignore")
        result = pytester.runpytest(*words, "--collect-only", "-q")
    out = result.stdout.str() + result.stderr.str()
    said = f"{page}: {line}\n{out[-3000:]}"
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), said
    assert "Traceback" not in out and "collected" in out, said
    if result.ret == pytest.ExitCode.TESTS_FAILED:  # a gate with nothing timed judges nothing, and says so
        assert "cnnbench: gate FAILED" in out, said


def cnnbench_lines() -> list[tuple[str, str]]:
    return [(page, line) for page, line in COMMANDS if line.startswith(("cnnbench ", "python -m cnnbench "))]


@pytest.mark.parametrize(("page", "line"), cnnbench_lines())
def test_every_cnnbench_line_parses_and_runs(page, line, sandbox, tiny_cifar, capsys):
    from cnnbench.cli.main import main, make_parser

    words = stand_in(line, tiny_cifar)
    words = words[3:] if words[0] == "python" else words[1:]
    make_parser().parse_args(words)  # a usage error raises
    if words[0] == "join" or "cuda-" in line:
        return  # join waits for a controller; a GPU class's runs are not here
    status = main(words)
    out = capsys.readouterr()
    assert status in (0, 1), f"{page}: {line}\n{out.err}"
    assert "Traceback" not in out.out + out.err


def reference_lines() -> list[tuple[str, str]]:
    return [(page, line) for page, line in COMMANDS if line.startswith(("python -m cnnbench.bare", "torchrun "))]


@pytest.mark.parametrize(("page", "line"), reference_lines())
def test_every_reference_loop_line_parses(page, line, tiny_cifar):
    from cnnbench.bare import all_reduce, training

    words = stand_in(line, tiny_cifar)
    module = words[words.index("-m") + 1]
    parser = {"cnnbench.bare": training, "cnnbench.bare.all_reduce": all_reduce}[module].make_parser()
    parser.parse_args(words[words.index("-m") + 2 :])  # a usage error exits 2


@pytest.mark.parametrize(
    ("page", "line"), [(page, line) for page, line in COMMANDS if line.startswith("python tests/")]
)
def test_every_script_line_runs(page, line, tmp_path):
    words = stand_in(line, tmp_path / "cifar")
    done = subprocess.run([sys.executable, *words[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{page}: {line}\n{done.stderr}"


def test_the_extending_example_loads_as_a_plugin(sandbox):
    """The model module of docs/extending.md, saved as the page says, loaded by the page's command."""
    page = (ROOT / "docs" / "extending.md").read_text()
    module = page.split("In `mymodels.py`", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    (sandbox / "mymodels.py").write_text(module)
    ((_, line),) = [(p, line) for p, line in COMMANDS if p == "extending.md" and " -p " in line]
    words = [*shlex.split(line), "--cnnbench-devices=cpu:0", "--collect-only", "-q"]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_ADDOPTS": ""}
    words[0] = sys.executable
    done = subprocess.run(words, cwd=sandbox, env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "tiny_cnn-bs32-fp32-single-cpu:0" in done.stdout
