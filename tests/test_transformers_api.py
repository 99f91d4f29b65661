"""The installed transformers is the tested one, with every internal name the pruned model relies on."""

import pytest

from gprune import transformers_api


def test_the_installed_transformers_is_in_the_tested_range():
    import transformers

    assert transformers_api.tested(), (f"transformers {transformers.__version__} is outside {transformers_api.TESTED}: "
                                       "run the suite on it and move the range (and pyproject.toml's pin) together")


def test_pyproject_pins_the_same_range():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    pin = next(d for d in project["dependencies"] if d.startswith("transformers"))
    assert pin.removeprefix("transformers") == str(transformers_api.TESTED) or \
        set(pin.removeprefix("transformers").split(",")) == set(str(transformers_api.TESTED).split(","))


@pytest.mark.parametrize("version,ok", [("5.24.0", True), ("5.24.3", True), ("5.17.0", False), ("5.25.0", False)])
def test_the_range(version, ok):
    assert transformers_api.tested(version) is ok


def test_every_internal_name_the_pruned_model_relies_on_is_there_with_its_parameters():
    from gprune.families import FAMILIES

    assert transformers_api.relied_on_problems() == []
    assert {family.name: transformers_api.relied_on_problems(family.relied_on) for family in FAMILIES} == {
        family.name: [] for family in FAMILIES}
    assert all(family.relied_on for family in FAMILIES)  # each family's module says what it relies on


def test_a_renamed_internal_is_named():
    relied = dict(transformers_api.RELIED_ON)
    try:
        transformers_api.RELIED_ON["transformers.models.llava_next.modeling_llava_next:unpad_image"] = ("image", "size")
        transformers_api.RELIED_ON["transformers.models.llava_next.modeling_llava_next:gone_helper"] = ("x",)
        problems = transformers_api.relied_on_problems()
    finally:
        transformers_api.RELIED_ON.clear()
        transformers_api.RELIED_ON.update(relied)
    assert any("unpad_image: parameters ['tensor', 'original_size'], relied on as ['image', 'size']" in p
               for p in problems)
    assert any("gone_helper: gone" in p for p in problems)
