"""Model folders whose files do not fit each other fail once, before any benchmark and before Ray, naming the file
and the key, instead of failing every sample with transformers' words."""

import json
import shutil

import pytest

from gprune import load_model
from gprune.checkpoints import TINY
from sweep.spec import SweepSpecError, parse_spec
from testbed.tiny import build_qwen25vl


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qwen")
    model, processor = build_qwen25vl()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def copy(source, target, config=None, text_config=None, remove=()):
    shutil.copytree(source, target)
    for name in remove:
        (target / name).unlink()
    saved = json.loads((target / "config.json").read_text())
    saved.update(config or {})
    saved["text_config"].update(text_config or {})
    (target / "config.json").write_text(json.dumps(saved))
    return target


CASES = {  # what a user's folder got wrong -> what the one error says
    "tokenizer missing": (dict(remove=("tokenizer.json", "tokenizer_config.json")),
                          "no tokenizer (none of tokenizer.json, tokenizer.model"),
    "vision_feature_layer": (dict(config={"vision_feature_layer": 50}),
                             "config.json: vision_feature_layer 50 is outside the vision tower's 3 hidden states"),
    "image token outside the vocabulary": (dict(config={"image_token_index": 100000}),
                                           "config.json: image_token_id 100000 is outside the vocabulary"),
    "layer_types": (dict(text_config={"num_hidden_layers": 3, "layer_types": ["full_attention"] * 2}),
                    "config.json: ValueError: `num_hidden_layers` (3) must be equal to the number of `layer_types`"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_folder_whose_files_do_not_fit_is_one_error_naming_file_and_key(case, tmp_path):
    edits, message = CASES[case]
    folder = copy(TINY, tmp_path / "model", **edits)
    for attempt in (lambda: load_model(str(folder), device="cpu"),
                    lambda: parse_spec({"name": "x", "model": str(folder), "fixtures": {"n": 4}})):
        with pytest.raises((ValueError, SweepSpecError)) as error:
            attempt()
        assert message in str(error.value) and str(folder) in str(error.value)
        assert "Traceback" not in str(error.value) and len(str(error.value).splitlines()) <= 2


def test_a_processor_of_another_family_is_named(tmp_path, qwen):
    folder = copy(TINY, tmp_path / "model")
    for name in ("processor_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (folder / name).unlink()
        if (qwen / name).exists():
            shutil.copy(qwen / name, folder / name)
    with pytest.raises(ValueError, match="processor_config.json: processor_class Qwen2_5_VLProcessor is another "
                                         "family's; a LLaVA-NeXT checkpoint needs LlavaNextProcessor's files"):
        load_model(str(folder), device="cpu")


def test_an_mrope_section_that_does_not_fit_the_head_is_named(tmp_path, qwen):
    saved = json.loads((qwen / "config.json").read_text())
    rope = {**saved["text_config"]["rope_parameters"], "mrope_section": [1, 1, 1]}
    folder = copy(qwen, tmp_path / "model", text_config={"rope_parameters": rope})
    with pytest.raises(ValueError, match=r"config.json: text_config mrope_section \[1, 1, 1\] sums to 3; the rotary "
                                         r"halves of a 16-wide attention head need 8"):
        load_model(str(folder), device="cpu")


def test_an_image_token_the_tokenizer_does_not_use_fails_on_the_blank_image(tmp_path):
    folder = copy(TINY, tmp_path / "model", config={"image_token_index": 5})  # in the vocabulary, not <image>
    with pytest.raises(ValueError, match="one blank image through its processor and model fails .*the tokenizer's "
                                         "<image> is token 4, config.json's image_token_id is 5"):
        load_model(str(folder), device="cpu")
