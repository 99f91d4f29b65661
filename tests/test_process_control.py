"""Process-wide state is the process's owner's (read from the source): no module changes the environment when it is
imported, and nothing signals its own process (a sweep stops Tune through Tune: sweep/ray_api.interrupt_tune)."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODULES = sorted(path for package in ("gprune", "sweep", "workers", "dashboards", "cli", "testbed")
                 for path in (REPO / package).rglob("*.py"))
ENVIRONMENT_CHANGES = {"setdefault", "update", "pop", "clear", "putenv", "unsetenv", "popitem"}


def import_time_code(tree: ast.Module):
    """The statements that run when the module is imported: all but function bodies."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        yield node
        pending.extend(ast.iter_child_nodes(node))


def changes_environment(node) -> bool:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        owner = ast.unparse(node.func.value)
        return (owner == "os.environ" and node.func.attr in ENVIRONMENT_CHANGES) or \
            (owner == "os" and node.func.attr in ENVIRONMENT_CHANGES)
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
        targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
        return any(isinstance(t, ast.Subscript) and ast.unparse(t.value) == "os.environ" for t in targets)
    return False


def signals_itself(node) -> bool:
    if not isinstance(node, ast.Call):
        return False
    call = ast.unparse(node)
    return call.startswith(("signal.raise_signal(", "os.raise_signal(")) or \
        (call.startswith(("os.kill(", "os.killpg(")) and ("getpid()" in call or "getpgid(0)" in call))


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(REPO)))
def test_importing_a_module_leaves_the_environment_alone(path):
    tree = ast.parse(path.read_text())
    assert [ast.unparse(n) for n in import_time_code(tree) if changes_environment(n)] == []


def test_nothing_signals_its_own_process():
    found = [f"{path.relative_to(REPO)}:{node.lineno}" for path in MODULES
             for node in ast.walk(ast.parse(path.read_text())) if signals_itself(node)]
    assert found == []


def test_the_readers_see_what_they_look_for():
    code = ast.parse("import os\nos.environ.setdefault('A', '1')\nos.environ['B'] = '2'\n"
                     "def later():\n    os.environ['C'] = '3'\nos.kill(os.getpid(), 2)\n")
    assert [ast.unparse(n) for n in import_time_code(code) if changes_environment(n)] == [
        "os.environ['B'] = '2'", "os.environ.setdefault('A', '1')"]
    assert [n.lineno for n in ast.walk(code) if signals_itself(n)] == [6]
