"""The package's imports follow the floors written in docs/design.md: nothing imports upward."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "bayescompress"
DESIGN = ROOT / "docs" / "design.md"
HEAVY = ("torch", "pyro", "gensim", "matplotlib", "sklearn")
NUMERIC_CORE_TOP_FLOOR = 6  # floors 1..6: base to packing
APART = ("fit/", "evaluate/")  # one floor, and neither imports the other


def read_floors(text: str) -> dict[str, int]:
    """Module or folder ("fit/") -> floor number, from the ```floors block."""
    block = re.search(r"```floors\n(.*?)```", text, re.DOTALL).group(1)
    floors = {}
    for line in block.strip().splitlines():
        number, _, members = line.partition(":")
        for member in members.split():
            floors[member] = int(number.split()[0])
    return floors


def module_name(path: Path) -> str:
    """bayescompress/fit/bnn.py -> "fit/bnn", bayescompress/cli.py -> "cli"."""
    return path.relative_to(PACKAGE).with_suffix("").as_posix()


def floor_of(module: str, floors: dict[str, int]) -> int | None:
    if module in floors:
        return floors[module]
    folder = module.split("/")[0] + "/"
    return floors.get(folder) if "/" in module else None


def imported_modules(path: Path) -> list[tuple[str, int]]:
    """Every module of this package and every outside top-level name that ``path`` imports, with lines.

    Package modules come back as module names ("networks/mlp"; the package itself is "__init__"),
    outside ones as "ext:NAME"; imports inside functions count.
    """
    here = module_name(path).split("/")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(_absolute(alias.name.split("."), node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != "bayescompress":
                    found.append((f"ext:{parts[0]}", node.lineno))
                    continue
                base = parts[1:]
            else:
                base = here[: len(here) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            for alias in node.names:
                found.append((_package_module(base + [alias.name], base), node.lineno))
    return found


def _absolute(parts: list[str], line: int) -> tuple[str, int]:
    if parts[0] != "bayescompress":
        return f"ext:{parts[0]}", line
    return _package_module(parts[1:], parts[1:]), line


def _package_module(candidate: list[str], base: list[str]) -> str:
    """The module a name refers to: a submodule when one exists, else the module it is taken from."""
    for parts in (candidate, base):
        path = PACKAGE.joinpath(*parts)
        if parts and path.with_suffix(".py").is_file():
            return "/".join(parts)
        if path.is_dir() and (path / "__init__.py").is_file():
            return "/".join(parts + ["__init__"]) if parts else "__init__"
    return "/".join(base) or "__init__"


def violations(floors: dict[str, int], sources: dict[str, list[tuple[str, int]]]) -> list[str]:
    """Every import that runs up a floor, crosses between fit/ and evaluate/, or pulls a heavy
    library into the numeric core; and every module on no floor."""
    found = []
    for module, imports in sources.items():
        floor = floor_of(module, floors)
        if floor is None:
            found.append(f"{module}: on no floor of docs/design.md")
            continue
        for target, line in imports:
            if target.startswith("ext:"):
                if floor <= NUMERIC_CORE_TOP_FLOOR and target[4:] in HEAVY:
                    found.append(f"{module}:{line}: the numeric core imports {target[4:]}")
                continue
            target_floor = floor_of(target, floors)
            if target_floor is None:
                continue  # reported as a module on no floor
            if target_floor > floor:
                found.append(f"{module}:{line}: imports {target} (floor {target_floor}) from floor {floor}")
            tops = {module.split("/")[0] + "/", target.split("/")[0] + "/"}
            if tops == set(APART):
                found.append(f"{module}:{line}: imports {target}; fit/ and evaluate/ stay apart")
    return found


def package_sources() -> dict[str, list[tuple[str, int]]]:
    return {module_name(path): imported_modules(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_import_of_the_package_runs_down_the_floors_of_the_design_doc():
    floors = read_floors(DESIGN.read_text(encoding="utf-8"))
    assert violations(floors, package_sources()) == []


def test_the_numeric_core_never_imports_torch_pyro_gensim_or_matplotlib():
    floors = read_floors(DESIGN.read_text(encoding="utf-8"))
    core = [m for m in package_sources() if (floor_of(m, floors) or 99) <= NUMERIC_CORE_TOP_FLOOR]
    assert {"packing", "coding", "vbq", "posterior", "ratecontrol"} <= set(core)
    heavy = [(m, t) for m in core for t, _ in imported_modules(PACKAGE / f"{m}.py") if t[4:] in HEAVY]
    assert heavy == []


@pytest.mark.parametrize(("module", "imports", "complaint"), [
    ("packing", [("cli", 3)], "imports cli (floor 11) from floor 6"),
    ("packing", [("networks/mlp", 9)], "imports networks/mlp (floor 7) from floor 6"),
    ("fit/bnn", [("evaluate/bnn", 5)], "fit/ and evaluate/ stay apart"),
    ("fit/bnn", [("__init__", 16)], "imports __init__ (floor 11) from floor 9"),
    ("coding", [("ext:torch", 2)], "the numeric core imports torch"),
    ("newstage", [], "on no floor"),
])
def test_an_upward_import_or_a_module_on_no_floor_is_reported(module, imports, complaint):
    floors = read_floors(DESIGN.read_text(encoding="utf-8"))
    [found] = violations(floors, {module: imports})
    assert complaint in found


def test_relative_imports_resolve_to_the_modules_they_name():
    imports = {target for target, _ in imported_modules(PACKAGE / "fit" / "bnn.py")}
    assert {"_version", "networks/mlp", "networks/model_spec", "fit/pyro_store", "ext:torch"} <= imports
    assert "__init__" not in imports
