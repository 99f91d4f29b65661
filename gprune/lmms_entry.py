"""The `lmms_eval.models` entry point. lmms-eval calls `manifest()` while it builds its model
registry, so this module imports nothing from lmms-eval at load time (no circular import)."""


def manifest():
    from lmms_eval.models.registry_v2 import ModelManifest

    # one class for every family: the checkpoint's config.json says which (gprune/families.py)
    return ModelManifest(model_id="gprune_llava_next", simple_class_path="gprune.lmms_model.GPruneLlavaNext",
                         aliases=("gprune_llava", "gprune_qwen2_5_vl"))
