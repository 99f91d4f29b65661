"""Private names of transformers, torch and Ray are reached in one adapter module each (gprune/transformers_api.py,
sweep/ray_api.py), so a release that moves one breaks in one known place: this test reads the source of every other
module and fails on a private name of theirs (an import, an attribute, a keyword, an override of a private method)."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("gprune", "sweep", "workers", "dashboards", "cli", "testbed", "bench")
ADAPTERS = {"gprune/transformers_api.py", "sweep/ray_api.py"}
# documented Python names that start with one underscore: a named tuple's methods, an Enum member's value
DOCUMENTED = {"_replace", "_asdict", "_fields", "_make", "_value_"}


def sources() -> dict[str, ast.Module]:
    return {str(path.relative_to(REPO)): ast.parse(path.read_text())
            for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))}


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def their_private_methods() -> set[str]:
    """The private names of the classes the pruned models and processors subclass, and of Tune's callbacks."""
    from ray.tune import Callback, Stopper
    from transformers import GenerationMixin, PreTrainedModel, ProcessorMixin

    from gprune.families import FAMILIES

    classes = [GenerationMixin, PreTrainedModel, ProcessorMixin, Callback, Stopper]
    for family in FAMILIES:
        classes += [family.model, family.processor, *family.model.__mro__]
    return {name for cls in classes for name in dir(cls) if private(name)}


def our_names(trees) -> set[str]:
    """Every name this project defines (functions, classes, assigned names and attributes)."""
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                  and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return names | DOCUMENTED


def reached(tree: ast.Module, theirs: set[str], ours: set[str]) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            if any(private(part) for part in node.module.split(".")):
                found.append(f"{node.lineno}: from {node.module}")
            found += [f"{node.lineno}: import {alias.name}" for alias in node.names if private(alias.name)]
        elif isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {alias.name}" for alias in node.names
                      if any(private(part) for part in alias.name.split("."))]
        elif isinstance(node, ast.Attribute) and private(node.attr):
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            if node.attr in theirs or (node.attr not in ours and owner not in ("self", "cls")):
                found.append(f"{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.FunctionDef) and node.name in theirs:
            found.append(f"{node.lineno}: def {node.name} (overrides theirs)")
        elif isinstance(node, ast.keyword) and node.arg and private(node.arg):
            found.append(f"{node.value.lineno}: {node.arg}=")
    return found


def test_private_names_of_transformers_torch_and_ray_are_reached_only_in_their_adapters():
    trees = sources()
    theirs = their_private_methods()
    ours = our_names(trees.values()) - theirs
    found = {path: reached(tree, theirs, ours) for path, tree in trees.items() if path not in ADAPTERS}
    assert {path: lines for path, lines in found.items() if lines} == {}


def test_the_finder_sees_each_kind_of_reach():
    theirs = {"_prepare_position_ids_for_generation"}
    code = ast.parse("import torch._dynamo\nfrom ray._private import worker\nconfig._attn_implementation = 'eager'\n"
                     "ray.init(_temp_dir='x')\nclass A:\n    def _prepare_position_ids_for_generation(self): pass\n"
                     "self._mine = 1\nobj._mine\n")
    assert sorted(reached(code, theirs, {"_mine"})) == [
        "1: import torch._dynamo", "2: from ray._private", "3: ._attn_implementation", "4: _temp_dir=",
        "6: def _prepare_position_ids_for_generation (overrides theirs)"]


@pytest.mark.parametrize("adapter", ["transformers", "ray"])
def test_each_adapter_finds_every_name_it_relies_on(adapter):
    if adapter == "ray":
        from sweep.ray_api import relied_on_problems
    else:
        from gprune.transformers_api import relied_on_problems
    assert relied_on_problems() == []
