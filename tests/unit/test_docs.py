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
