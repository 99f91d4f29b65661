"""Sweep files: pydantic checks every key, the checks across keys run too, one error lists it all."""

from pathlib import Path

import pytest
import yaml

from cli.main import main
from sweep.presets import list_presets
from sweep.spec import SweepSpecError, load_spec, parse_spec, preset_path

REPO = Path(__file__).resolve().parents[1]


def test_every_sweep_file_in_the_repository_is_valid():
    files = [preset_path(name) for name in list_presets()] + sorted((REPO / "docs").glob("**/*.yaml"))
    assert files
    for path in files:
        spec = load_spec(path)
        assert spec.name and spec.benchmarks


def test_each_bad_value_is_named_in_one_error_with_its_path(tmp_path):
    bad = {"name": "bad", "model": 5, "max_new_tokens": -3, "seed": "x", "fixtures": {"n": -1},
           "scheduler": {"type": "asha", "grace_period": 0, "reduction_factor": 1}, "workers": {"cache_mb": -5},
           "search": {"num_samples": True}, "benchmarks": 5, "batch_size": 0, "tracking": {"uri": "mongo://x"}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(SweepSpecError) as error:
        load_spec(path)
    problems = error.value.problems
    for expected in ("model: 5", "max_new_tokens: -3", "seed: 'x'", "fixtures.n: -1", "scheduler.grace_period: 0",
                     "scheduler.reduction_factor: 1", "workers.cache_mb: -5", "search.num_samples: True",
                     "benchmarks: 5 must be a list", "batch_size: 0", "tracking.uri: 'mongo://x'"):
        assert sum(p.startswith(expected) for p in problems) == 1, (expected, problems)
    assert len(problems) == 11
    assert str(path) in str(error.value) and "11 problem(s)" in str(error.value)


def test_the_cli_rejects_a_bad_file_in_one_message_before_ray(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "workers": {"cache_mb": -5}, "seed": "x"}))
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n  - ") == 2 and "workers.cache_mb: -5" in err and "Traceback" not in err


def test_problems_across_keys_are_reported_with_those_of_single_keys():
    with pytest.raises(SweepSpecError) as error:
        parse_spec({"name": "x", "seed": -1, "benchmarks": ["pope"], "limit": {"pope": 1, "gqa": 2},
                    "scheduler": {"type": "asha", "slices": 2},
                    "search_space": {"ratio": {"uniform": [0.1, 0.5]}}}, check_files=False)
    problems = "\n".join(error.value.problems)
    assert "seed: -1" in problems and "limit.gqa: not one of this sweep's benchmarks" in problems
    assert "limit: pope: 1 is smaller than scheduler.slices=2" in problems
    assert "grid cannot sample distributions" in problems


def test_a_valid_spec_round_trips_through_its_saved_form():
    spec = parse_spec({"name": "ok", "benchmarks": "pope,textvqa", "fixtures": {"n": 4}, "limit": {"pope": 3},
                       "search_space": {"ratio": [0.5, 0.9], "method": "gprune"}})
    assert spec.benchmarks == ["pope", "textvqa"] and spec.limits() == {"pope": 3, "textvqa": None}
    assert spec.fixed_prune() == {"method": "gprune"}
    assert parse_spec(spec.to_dict(), check_files=False) == spec


def test_a_bad_sweep_file_fails_before_ray_starts_listing_every_problem(tmp_path, monkeypatch, capsys):
    import sweep.runner

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started for an invalid sweep file")

    monkeypatch.setattr(sweep.runner, "connect", no_ray)
    bad = {"name": "bad one", "data_dir": str(tmp_path / "nowhere"), "benchmarks": ["pope", "gqq"], "colour": "red",
           "limit": {"pope": 0, "chartqa": 3},
           "search_space": {"ratio": [0.5, 1.5], "method": ["gprune", "sparsevlm"], "iterations": [-1], "depth": [1]},
           "search": {"algorithm": "bayes"}, "scheduler": {"type": "asha", "slices": 1}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(SweepSpecError) as error:
        load_spec(path)
    problems = "\n".join(error.value.problems)
    for expected in ("colour: unknown key", "name: 'bad one'", "'gqq' unknown", "ratio=1.5", "method='sparsevlm'",
                     "iterations=-1", "search_space.depth: unknown parameter", "search.algorithm: 'bayes'",
                     "scheduler.slices: 1", "no files match data/test-*.parquet", "limit: pope: 0",
                     "limit.chartqa: not one of this sweep's benchmarks"):
        assert expected in problems, expected
    assert main(["sweep", str(path)]) == 2
    assert "problem(s)" in capsys.readouterr().err


def test_failure_reasons_name_the_benchmark_or_the_rate():
    from sweep.metrics import failure

    assert failure({"pope.error_rate": 0.0, "textvqa.error_rate": 1.0, "error_rate": 0.5}, 0.05) \
        == "every sample failed on textvqa"
    assert failure({"pope.error_rate": 0.1, "error_rate": 0.1}, 0.05) == "error rate 10.0% > max_error_rate 5.0%"
    assert failure({"pope.error_rate": 0.04, "error_rate": 0.04}, 0.05) == ""
    with pytest.raises(SweepSpecError, match="max_error_rate: 1.5"):
        parse_spec({"name": "x", "max_error_rate": 1.5}, check_files=False)


def test_the_model_is_checked_before_ray(tmp_path):
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text('{"model_type": "bert"}')
    for model, message in ((str(tmp_path / "missing"), "does not exist"), (str(bert), "holds a 'bert' model"),
                           (5, "model: 5")):
        with pytest.raises(SweepSpecError, match=message):
            parse_spec({"name": "x", "model": model, "fixtures": {"n": 4}})


def test_a_huge_grid_needs_yes(tmp_path, capsys):
    path = tmp_path / "huge.yaml"
    space = {"ratio": [i / 1000 for i in range(1, 999)], "iterations": [1, 2]}
    path.write_text(yaml.safe_dump({"name": "huge", "fixtures": {"n": 4}, "search_space": space}))
    assert main(["sweep", str(path)]) == 2
    assert "runs 1,996 trials (over 1,000); pass --yes" in capsys.readouterr().err


@pytest.mark.parametrize("uri,message", [
    ("http://127.0.0.1:1", "tracking server http://127.0.0.1:1 is unreachable"),
    ("postgresql+psycopg://gprune:secret@127.0.0.1:1/mlflow", "postgresql+psycopg://gprune:***@127.0.0.1:1/mlflow"),
    ("sqlite:////no/such/folder/mlflow.db", "folder /no/such/folder does not exist"),
])
def test_an_unreachable_tracking_store_is_named_before_any_run_or_ray(uri, message, tmp_path, monkeypatch, capsys):
    import sweep.runner

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started for an unreachable tracking store")

    monkeypatch.setattr(sweep.runner, "connect", no_ray)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "fixtures": {"n": 4}, "limit": 1}))
    assert main(["sweep", str(path), "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert message in err and "secret" not in err and "Traceback" not in err


def test_an_unreachable_ray_address_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "fixtures": {"n": 4}, "limit": 1}))
    assert main(["sweep", str(path), "--address", "127.0.0.1:1",
                 "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"]) == 2
    assert "Ray address 127.0.0.1:1 is unreachable" in capsys.readouterr().err


@pytest.mark.parametrize("text,message", [
    ("name: a\nlimit: 4\nname: b\n", "key 'name' is written twice (lines 1 and 3); keep one"),
    ("name: a\nworkers: {count: 1, count: 2}\n", "key 'count' is written twice"),
    ("name: a\nsearch_space: {ratio: [0.5\n", "is not valid YAML"),
    ("name: a\nb: \xff\n".encode("latin-1"), "is not UTF-8 text"),
])
def test_a_file_yaml_would_read_wrongly_or_not_at_all_is_named(tmp_path, text, message):
    path = tmp_path / "s.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(SweepSpecError) as error:
        load_spec(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_an_alias_bomb_is_refused_at_once_without_printing_its_values(tmp_path):
    """9 levels of 9-element anchors: 387 M floats once expanded, from a file under 1 KB."""
    lines = ["a0: &a0 [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("name: bomb\n" + "\n".join(lines) + "\nsearch_space: {ratio: *a8}\n")
    with pytest.raises(SweepSpecError) as error:
        load_spec(path)
    assert "expands to over 100,000 values" in str(error.value) and len(str(error.value)) < 400


def test_a_long_bad_value_is_shown_cut_short():
    with pytest.raises(SweepSpecError) as error:
        parse_spec({"name": "x", "model": ["m"] * 10_000}, check_files=False)
    assert "model: ['m', 'm', 'm', 'm', 'm', 'm', ...]" in str(error.value) and len(str(error.value)) < 300


@pytest.mark.parametrize("workers", [{"cpus_per_worker": float("inf")}, {"cpus_per_worker": float("nan")}])
def test_numbers_must_be_finite(workers):
    with pytest.raises(SweepSpecError, match="workers.cpus_per_worker: .*finite"):
        parse_spec({"name": "x", "workers": workers}, check_files=False)


@pytest.mark.parametrize("space,message", [
    ({"method": "gprune", "lm_layer": [1, 2, 3]}, "search_space.lm_layer: a parameter of fastv, which this sweep does "
                                                  "not run (method: gprune)"),
    ({"lm_layer": 2}, "search_space.lm_layer: a parameter of fastv, which this sweep does not run"),
    ({"method": ["gprune", "fastv"], "lm_layer": [1, 2]}, "search_space.lm_layer: only fastv uses it, so each gprune "
                                                          "trial would run once per value, identical"),
])
def test_a_parameter_the_sweep_s_methods_do_not_use_is_refused(space, message):
    with pytest.raises(SweepSpecError) as error:
        parse_spec({"name": "x", "search_space": space}, check_files=False)
    assert message in str(error.value)


def test_a_parameter_that_fits_some_methods_with_one_value_is_fine():
    spec = parse_spec({"name": "x", "search_space": {"method": ["gprune", "fastv"], "lm_layer": 1, "threshold": 0.3,
                                                     "ratio": [0.5, 0.7]}}, check_files=False)
    assert spec.search_space["lm_layer"] == 1


def test_fastv_s_layer_is_checked_against_the_model_s_depth_before_ray():
    with pytest.raises(SweepSpecError) as error:
        parse_spec({"name": "x", "model": "tiny", "search_space": {"method": "fastv", "lm_layer": [1, 4, 100]}})
    problems = error.value.problems
    assert len(problems) == 2 and all("below the language model's depth (4 layers)" in p for p in problems)


def test_a_damaged_weight_file_in_a_sweep_s_model_is_named_before_ray(tmp_path):
    import shutil

    from gprune.checkpoints import TINY

    folder = tmp_path / "model"
    shutil.copytree(TINY, folder)
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(SweepSpecError) as error:
        parse_spec({"name": "x", "model": str(folder)})
    assert f"model: {folder / 'model.safetensors'}: a weight file is damaged" in str(error.value)


def test_a_method_the_models_family_cannot_run_is_refused_before_ray(tmp_path):
    """VisionZip ranks by the vision tower's [CLS] attention; Qwen2.5-VL's tower has none (eval refuses it too)."""
    from testbed.tiny import build_qwen25vl

    model, processor = build_qwen25vl()
    model.save_pretrained(tmp_path / "qwen")
    processor.save_pretrained(tmp_path / "qwen")
    with pytest.raises(SweepSpecError) as error:
        parse_spec({"name": "x", "model": str(tmp_path / "qwen"), "fixtures": {"n": 4},
                    "search_space": {"method": ["gprune", "visionzip"], "ratio": 0.5}})
    assert error.value.problems == ["search_space.method: visionzip ranks tokens by the vision tower's [CLS] "
                                    "attention, and Qwen2.5-VL's vision tower has no [CLS] token; use another method "
                                    "(e.g. gprune, divprune, random)"]
