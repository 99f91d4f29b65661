"""The house rules, read from the source: every import points down a layer, and the library is
free of the test bed, the command line, Ray, MLflow and the layers above it."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Each package may import only the packages after it in this order (and third-party code).
LAYERS = ["cli", "dashboards", "sweep", "workers", "testbed", "gprune"]
FORBIDDEN_IN_LIBRARY = {"ray", "mlflow"}


def imported_top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", LAYERS)
def test_imports_point_down(package):
    above = set(LAYERS[: LAYERS.index(package)])
    if package == "gprune":
        above |= FORBIDDEN_IN_LIBRARY
    files = sorted((REPO / package).rglob("*.py"))
    assert files
    wrong = {str(f.relative_to(REPO)): sorted(imported_top_level_names(f) & above) for f in files}
    assert {f: names for f, names in wrong.items() if names} == {}


def test_no_two_modules_import_each_other():
    """Every import between the project's modules, as a graph: no cycle (a module's own package excluded)."""
    import graphlib

    modules = {str(f.relative_to(REPO).with_suffix("")).replace("/", "."): f
               for package in LAYERS for f in (REPO / package).rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name.rsplit(".", 1)[0] if not name.endswith("__init__") else name.removesuffix(".__init__")
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package if node.level else ""
                module = ".".join(part for part in (base, node.module or "") if part)
                targets |= {f"{module}.{alias.name}" for alias in node.names} | {module}
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
        resolved = {t if t in modules else f"{t}.__init__" for t in targets}
        graph[name] = {t for t in resolved if t in modules and t != name and not name.startswith(
            t.removesuffix(".__init__") + ".")}  # a module importing its own package's __init__ is not a cycle
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the modules of a cycle
