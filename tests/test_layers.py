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
