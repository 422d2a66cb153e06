"""The house's floors: each subpackage imports only the floors below it (or its own), and no module
imports another in a cycle. Read from the source, function-level imports included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cnnbench

PACKAGE = Path(cnnbench.__file__).parent
FLOORS = (  # bottom first; packages on one floor do not import each other
    {"machine"},
    {"workload"},
    {"settings"},
    {"results"},
    {"ranks", "storage"},
    {"report"},
    {"plugin", "cli", "bare"},
)
FLOOR = {package: level for level, packages in enumerate(FLOORS) for package in packages}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, typing: bool = True) -> set[str]:
    """The cnnbench modules ``path`` imports, wherever in the file; with ``typing=False``, not those
    imported for type checking alone (``if TYPE_CHECKING:``), which run no code."""
    tree = ast.parse(path.read_text())
    if not typing:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                node.body = []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("cnnbench.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cnnbench"):
            for alias in node.names:  # ``from cnnbench.report import files`` names a module
                name = f"{node.module}.{alias.name}"
                found.add(name if name in MODULES else node.module)
    return found - {"cnnbench"}


MODULES = modules()
GRAPH = {module: imports(path) for module, path in MODULES.items()}
RUNTIME = {module: imports(path, typing=False) for module, path in MODULES.items()}


def package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in FLOOR) else None


def test_every_subpackage_has_a_floor_and_says_what_it_owns():
    subpackages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert subpackages == set(FLOOR)
    for name in subpackages:
        assert len(ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text())) or "") > 60, name


@pytest.mark.parametrize("module", sorted(m for m in MODULES if package(m)))
def test_imports_go_down_the_floors(module):
    own = package(module)
    upward = [
        target for target in GRAPH[module] if (other := package(target)) and other != own and FLOOR[other] >= FLOOR[own]
    ]
    assert not upward, f"{module} imports {upward}: its floor is {FLOOR[own]}"


def test_no_module_imports_in_a_cycle():
    """At run time: an import for type checking alone may name a module that imports this one."""
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(RUNTIME.get(module, ())):
            assert state.get(target) != 1, "import cycle: " + " -> ".join([*path, module, target])
            if target in RUNTIME and state.get(target) is None:
                visit(target, [*path, module])
        state[module] = 2

    for module in sorted(RUNTIME):
        if module not in state:
            visit(module, [])


def test_every_module_says_its_job():
    for module, path in MODULES.items():
        assert ast.get_docstring(ast.parse(path.read_text())), f"{module} has no docstring"


def test_the_extension_points_come_from_cnnbench_without_importing_torch_until_used():
    import subprocess
    import sys

    code = (
        "import sys, cnnbench; assert 'torch' not in sys.modules; "
        "from cnnbench import register_model, register_wrapper, Wrapper, register_data, DataKind; "
        "from cnnbench.workload.models import register_model as same; assert register_model is same; "
        "print(sorted(cnnbench.__all__))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "register_model" in out and "register_wrapper" in out and "register_data" in out
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        cnnbench.nothing  # noqa: B018
