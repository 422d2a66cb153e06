"""The docs as a user meets them: a short README whose sample output is what the code prints, and
links between pages that resolve."""

import re
from pathlib import Path

import pytest

from cnnbench.report.tables import SPEEDUP, SPLIT
from cnnbench.settings.gate import gate_flags

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readme_is_short():
    assert len(README.splitlines()) <= 200


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "#")):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.exists(), f"{page.name} links to {target}, which does not exist"


def test_the_readme_sample_shows_the_headers_and_last_line_the_code_prints():
    sample = README.split("cnnbench: multi-device speedup", 1)[1].split("```", 1)[0].splitlines()
    headers = [line.split() for line in sample if line.strip().startswith("wrapper")]
    speedup = " ".join(column.name for column in SPEEDUP).split()
    split = [*" ".join(column.name for column in SPLIT).split(), "busbw"]
    assert headers == [speedup, split]
    assert sample[-1] == f"cnnbench: no gate set ({', '.join(gate_flags())})"


def test_every_option_is_on_the_options_page():
    from cnnbench.settings.options import OPTIONS

    page = (ROOT / "docs" / "options.md").read_text()
    missing = [option.flag for option in OPTIONS if f"`{option.flag}`" not in page]
    assert not missing, f"docs/options.md lacks {', '.join(missing)}"


def commands() -> list[tuple[str, str]]:
    """Every ``pytest perf_tests`` and ``cnnbench`` line in the fenced blocks of the docs, continued
    lines joined, comments dropped; synopses (``[--option]``) left out."""
    found = []
    for page in PAGES:
        block, text = False, page.read_text().replace("\\\n", " ")
        for line in text.splitlines():
            if line.strip().startswith("```"):
                block = not block
                continue
            line = line.split(" #", 1)[0].strip().removeprefix("python -m ")
            if block and line.startswith(("pytest perf_tests", "cnnbench ")) and "[" not in line:
                found.append((page.name, line))
    return found


@pytest.mark.parametrize(("page", "line"), commands())
def test_every_command_in_the_docs_uses_options_that_exist(page, line):
    """Without running it (most name GPUs, data or hosts this machine lacks): each option is one the
    plugin, pytest-benchmark or the cnnbench command takes, and its value parses."""
    import shlex

    from cnnbench.cli.main import make_parser
    from cnnbench.settings.options import OPTIONS

    words = shlex.split(line)
    if words[0] == "cnnbench":
        make_parser().parse_args(words[1:])  # a usage error raises
        return
    ours = {option.flag: option for option in OPTIONS}
    theirs = benchmark_flags()
    for word in words[2:]:
        flag, _, value = word.partition("=")
        assert flag in ours or flag in theirs, f"{page}: {line}: no option {flag}"
        if flag in ours and value and flag not in ("--cnnbench-devices", "--cnnbench-data", "--cnnbench-rdzv"):
            ours[flag].parse(value)  # devices, data and hosts are this machine's to check


def benchmark_flags() -> set[str]:
    """pytest-benchmark's own flags, as its plugin adds them."""
    import pytest_benchmark.plugin

    flags: set[str] = set()

    class Collector:
        def getgroup(self, *args, **kwargs):
            return self

        def addoption(self, *names, **kwargs):
            flags.update(names)

        def addini(self, *args, **kwargs):
            pass

    pytest_benchmark.plugin.pytest_addoption(Collector())
    return flags
