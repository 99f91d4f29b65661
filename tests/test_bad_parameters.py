"""Parameters that pass a loose check and then hang, fail every sample, or are silently ignored: each is refused
in one line naming the bound, before any model work."""

import pytest
import torch

from cli.main import main
from gprune import PruneConfig
from gprune.methods import METHODS
from gprune.methods.gprune import MAX_ITERATIONS, MIN_TEMPERATURE


@pytest.mark.parametrize("field,value,rule", [
    ("iterations", 1_000_000_000, f"an integer in [0, {MAX_ITERATIONS}]"),  # ran silently for minutes
    ("temperature", 1e-300, f"a finite number >= {MIN_TEMPERATURE:g}"),  # underflowed: the first k tokens kept
    ("seed", 99999999999999999999999, "an integer in [0, 2**63 - 1]"),  # failed every sample
])
def test_a_value_past_its_documented_bound_is_refused(field, value, rule):
    with pytest.raises(ValueError, match="must be " + rule.replace("[", r"\[").replace("]", r"\]").replace("*", r"\*")):
        PruneConfig(method="gprune" if field != "seed" else "random", ratio=0.5, **{field: value})
    PruneConfig(iterations=MAX_ITERATIONS, temperature=MIN_TEMPERATURE, seed=2**63 - 1)  # the bounds themselves


def test_scores_that_are_not_finite_are_an_error_not_the_first_tokens():
    features = torch.randn(16, 8)
    features[3, 0] = float("inf")  # what an overflowing score would be made of
    with pytest.raises(ValueError, match="scores of 16 tokens are not all finite"):
        METHODS["l2norm"].reduce(features, 4)


@pytest.mark.parametrize("args,named", [
    (["--method", "gprune", "--lm_layer", "2"], "--lm_layer: a parameter of fastv, which --method gprune does not"),
    (["--method", "l2norm", "--threshold", "0.3"], "--threshold: a parameter of"),
])
def test_eval_refuses_a_parameter_its_method_does_not_use(args, named, capsys):
    assert main(["eval", "--ratio", "0.5", *args]) == 2
    assert named in capsys.readouterr().err


def test_eval_still_takes_a_methods_own_parameters(capsys, tmp_path):
    assert main(["eval", "--method", "gprune", "--ratio", "0.5", "--threshold", "0.3", "--iterations", "1",
                 "--limit", "2", "--json", str(tmp_path / "out.json")]) == 0
    assert '"threshold": 0.3' in (tmp_path / "out.json").read_text()
