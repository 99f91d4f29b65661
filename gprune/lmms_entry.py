"""The `lmms_eval.models` entry point. lmms-eval calls `manifest()` while it builds its model
registry, so this module imports nothing from lmms-eval at load time (no circular import)."""


def manifest():
    from lmms_eval.models.registry_v2 import ModelManifest

    from .families import FAMILIES

    # one class for every family: the checkpoint's config.json says which (gprune/families/); each family's own
    # name too, so a command line says what it evaluates
    return ModelManifest(model_id="gprune", simple_class_path="gprune.lmms_model.GPruneModel",
                         aliases=tuple(family.lmms_name for family in FAMILIES))
