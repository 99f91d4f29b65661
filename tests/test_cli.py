"""The command line: defaults come from PruneConfig, help shows defaults and choices, listings work."""

from dataclasses import fields

import pytest

from cli.dataclass_args import from_args
from cli.main import build_parser, main
from gprune.benchmarks import TASKS
from gprune.config import PruneConfig
from gprune.methods import METHODS
from sweep.presets import list_presets


def test_eval_defaults_are_pruneconfig_defaults():
    args = build_parser().parse_args(["eval"])
    assert from_args(PruneConfig, args) == PruneConfig()


def test_help_shows_every_pruning_option_with_its_default_and_choices(capsys):
    assert main(["eval", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for field in fields(PruneConfig):
        assert f"--{field.name}" in text
        assert f"(default: {field.default})" in text, field.name
    assert "{" + ",".join(METHODS) + "}" in text


def test_every_option_has_help(capsys):
    parser = build_parser()
    for command in parser._subparsers._group_actions[0].choices.values():
        for action in command._actions:
            assert action.help, (command.prog, action.dest)


def test_benchmarks_presets_and_version(capsys):
    assert main(["benchmarks"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in TASKS) and "gpt_eval_score" in out
    assert main(["methods"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in METHODS) and "lm_layer=2" in listed
    assert main(["presets"]) == 0
    listed = capsys.readouterr().out  # read once: each read empties the buffer
    assert all(f"{name}: " in listed for name in list_presets())
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("gprune ")


@pytest.mark.parametrize("argv,message", [
    (["eval", "--limit", "0"], "argument --limit: 0 must be at least 1"),
    (["eval", "--batch-size", "-2"], "argument --batch-size: -2 must be at least 1"),
    (["eval", "--max-new-tokens", "0"], "argument --max-new-tokens: 0 must be at least 1"),
    (["eval", "--dtype", "float99"], "invalid choice: 'float99'"),
    (["eval", "--method", "sparsevlm"], "invalid choice: 'sparsevlm'"),
    (["eval", "--benchmarks", ","], "no benchmark named"),
    (["fixtures", "--out", "x", "--n", "1"], "argument --n: 1 must be at least 2"),
])
def test_bad_values_are_one_line_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"], ["bogus"], ["--version"], ["sweep", "--help"], ["report", "--help"],
                                  ["regress", "--help"], ["sweep", "--bogus"]])
def test_help_and_usage_errors_load_no_heavy_library(argv):
    """`gprune --help` answers from the command table: no torch, lmms-eval, Ray or MLflow is imported (their
    imports took 8 s here; README 'Command line' has the measured time)."""
    import subprocess
    import sys

    probe = ("import sys\nfrom cli.main import main\ncode = main(sys.argv[1:])\n"
             "heavy = [m for m in ('torch', 'transformers', 'lmms_eval', 'ray', 'mlflow') if m in sys.modules]\n"
             "print('heavy:', heavy, file=sys.stderr)\nsys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=120)
    assert "heavy: []" in done.stderr, done.stderr[-2000:]
    assert done.returncode == (0 if argv[-1] in ("--help", "--version") else 2)


def test_doctor_says_what_a_sweep_would_use_and_what_to_fix(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)  # a sweep then gives its cluster a fresh token
    assert main(["doctor", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]) == 0
    said = capsys.readouterr().out
    assert "ok   Ray: no --address: a sweep starts its own private cluster" in said and "answers" in said
    assert main(["doctor", "--address", "127.0.0.1:1", "--tracking-uri", f"sqlite:///{tmp_path}/none/x.db"]) == 1
    said = capsys.readouterr().out
    assert "FIX  Ray: Ray address 127.0.0.1:1 is unreachable" in said
    missing = tmp_path / "none"
    assert f"FIX  tracking: tracking store sqlite:///{missing}/x.db: folder {missing} does not exist" in said
