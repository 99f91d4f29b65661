"""Where our loop could differ from lmms-eval's llava_hf, a named option whose default is lmms-eval's."""

import pytest

from gprune.answers import AnswerRules
from gprune.benchmarks import load_task
from gprune.generation import generate_kwargs
from sweep.spec import SweepSpecError, parse_spec


def test_defaults_score_the_answer_as_lmms_eval_does(fixtures_dir):
    task = load_task("pope", fixtures_dir)
    doc = next(d for d in task.test_docs() if d["answer"] == "yes")
    generated = "Yes\n\nThere is a dog in the image."
    stops = ["\n\n"]  # a stop string a task could set
    kept = AnswerRules().finish(generated, stops)
    cut = AnswerRules(stop_strings="cut").finish(generated, stops)
    assert kept == generated and cut == "Yes"
    score = lambda text: task.process_results(doc, [text])["pope_accuracy"]["score"]  # noqa: E731
    assert score(cut) == 1.0 and score(kept) == 0.0  # lmms-eval's llava_hf scores the whole text: wrong


def test_reasoning_blocks_are_stripped_as_lmms_eval_s_cli_does_unless_kept():
    text = "<think>the sign says STOP, so</think>\n\nstop"
    assert AnswerRules().finish(text, []) == "stop"
    assert AnswerRules().finish("<analysis>red</analysis> red ", []) == "red"
    assert AnswerRules().finish("<think>never closed", []) == "<think>never closed"  # lmms-eval leaves it
    assert AnswerRules(reasoning_tags="keep").finish(text, []) == text


def test_a_task_without_a_limit_gets_lmms_eval_s_1024_and_the_cap_caps_both():
    assert generate_kwargs({})[0]["max_new_tokens"] == 1024
    assert generate_kwargs({}, answers=AnswerRules(default_max_new_tokens=64))[0]["max_new_tokens"] == 64
    assert generate_kwargs({"max_new_tokens": 16}, 8)[0]["max_new_tokens"] == 8
    assert generate_kwargs({}, 8)[0]["max_new_tokens"] == 8


@pytest.mark.parametrize("answers,message", [
    ({"stop_strings": "trim"}, "stop_strings='trim' must be one of keep, cut"),
    ({"bogus": 1}, "unknown key(s) bogus; known: stop_strings, default_max_new_tokens, reasoning_tags"),
    ({"default_max_new_tokens": 0}, "default_max_new_tokens=0 must be an integer >= 1"),
])
def test_a_sweep_file_names_a_bad_answer_rule(answers, message):
    with pytest.raises(SweepSpecError) as error:
        parse_spec({"name": "x", "answers": answers}, check_files=False)
    assert any(p.startswith("answers:") and message in p for p in error.value.problems), error.value.problems


def test_the_rules_travel_with_the_spec():
    spec = parse_spec({"name": "x", "answers": {"stop_strings": "cut"}}, check_files=False)
    assert spec.answer_rules() == AnswerRules(stop_strings="cut")
    assert parse_spec(spec.to_dict(), check_files=False).answer_rules() == spec.answer_rules()
