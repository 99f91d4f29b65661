"""The transformers this project is tested against, and every private name of it (and of torch) the project uses:
only this module reaches one (tests/test_private_names.py reads the rest). The pruned models also rely on public
internals (each family module overrides its model's image features and forward; gprune/lm_pruning.py hooks the
decoder layers and calls each backbone's rotary and eager attention), so another minor release may compute something
else without an error: outside the tested range a warning says so, and tests/test_transformers_api.py fails, as it
does when a name in RELIED_ON is gone or its parameters changed."""

import importlib
import inspect
import warnings

import torch
import transformers
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: F401  (bench/host_reads.py counts reads with it)
from transformers import CompileConfig

TESTED = SpecifierSet(">=5.24,<5.25")  # keep in step with pyproject.toml's transformers pin

# Internal names the pruned model uses or overrides, with the parameters it passes or receives, in order; each family
# module lists its own (Family.relied_on), checked with these.
RELIED_ON = {
    "transformers.generation.utils:GenerationMixin._prepare_position_ids_for_generation":  # PromptPositions
        ("inputs_tensor", "model_kwargs"),
    # lm_pruning.py: the masks for the reduced sequence (it passes layer_idx by name)
    "transformers.masking_utils:create_causal_mask": ("config", "inputs_embeds", "attention_mask", "cache",
                                                      "position_ids"),
    "transformers.masking_utils:create_sliding_window_causal_mask": ("config", "inputs_embeds", "attention_mask",
                                                                     "cache", "position_ids"),
}
# lm_pruning.py, for each language model a LLaVA-NeXT checkpoint ships with: the keyword arguments its hooks
# replace on the decoder layers and read on the attention modules, and the functions it scores with
for _backbone, _name in (("llama", "Llama"), ("mistral", "Mistral"), ("qwen2", "Qwen2")):
    _module = f"transformers.models.{_backbone}.modeling_{_backbone}"
    RELIED_ON |= {
        f"{_module}:{_name}DecoderLayer.forward": ("hidden_states", "attention_mask", "position_ids", "cache",
                                                   "use_cache", "position_embeddings"),
        f"{_module}:{_name}Attention.forward": ("hidden_states", "position_embeddings", "attention_mask"),
        f"{_module}:apply_rotary_pos_emb": ("q", "k", "cos", "sin"),
        f"{_module}:eager_attention_forward": ("module", "query", "key", "value", "attention_mask", "scaling"),
    }


def relied_on_problems(names: dict = RELIED_ON) -> list[str]:
    """Each relied-on name that the installed transformers lacks, or whose parameters differ."""
    problems = []
    for path, wanted in names.items():
        module, _, name = path.partition(":")
        try:
            target = importlib.import_module(module)
            for part in name.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as error:
            problems.append(f"{path}: gone ({error})")
            continue
        found = [p for p in inspect.signature(target).parameters if p != "self"][:len(wanted)]
        if tuple(found) != wanted:
            problems.append(f"{path}: parameters {found}, relied on as {list(wanted)}")
    return problems


def tested(version: str = transformers.__version__) -> bool:
    return Version(version) in TESTED


def warn_if_untested() -> None:
    if not tested():
        warnings.warn(f"transformers {transformers.__version__} is outside the range G-Prune is tested with "
                      f"({TESTED}): the pruned model reaches into transformers' internals and may compute something "
                      f"else; install transformers{TESTED}", stacklevel=2)


def set_attention_implementation(config, name: str) -> None:
    """A config's attention kernel before a model is built from it ("eager", "sdpa", ...)."""
    config._attn_implementation = name


def compile_config_for_every_device() -> CompileConfig:
    """generate()'s compile settings, compiling off CUDA too (transformers compiles off-CUDA only when asked so)."""
    config = CompileConfig()
    config._compile_all_devices = True
    return config


def compiler_counts(reset: bool = False) -> dict:
    """torch.compile's running counts since the last reset (its private torch._dynamo.utils.counters): graph breaks,
    graphs compiled, CUDA graphs skipped. reset=True zeroes them after reading."""
    from torch._dynamo.utils import counters

    counts = {"graph_breaks": sum(counters["graph_break"].values()), "recompiles": counters["stats"]["unique_graphs"],
              "cudagraph_skips": counters["inductor"]["cudagraph_skips"]}
    if reset:
        counters.clear()
    return counts


def allow_compiled_shapes(count: int) -> None:
    """Let torch.compile keep at least `count` compiled versions of a function (one per shape) before it falls back."""
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, count)


def attention_functions(attention) -> tuple:
    """(apply_rotary_pos_emb, eager_attention_forward) of the modeling file that defines `attention`, a decoder
    layer's self-attention: FastV scores one query row with them, as that layer computes its own (RELIED_ON lists
    them for every language model it runs on)."""
    modeling = importlib.import_module(type(attention).__module__)
    return modeling.apply_rotary_pos_emb, modeling.eager_attention_forward


def set_decode_offsets(model, offsets) -> None:
    """Per row, how far decode-step positions sit from text positions ([B, 1]): an M-RoPE model keeps them on
    itself as `rope_deltas` and adds them at every decode step (its `compute_3d_position_ids`)."""
    model.rope_deltas = offsets


class PromptPositions:
    """Mixed in before a ...ForConditionalGeneration whose prompt positions depend on pruning: generate() fixes them
    before images are encoded and extends them by one per new token. The class defines
    `prompt_position_ids(inputs_tensor, model_kwargs)`: the positions, or None for transformers' own."""

    def _prepare_position_ids_for_generation(self, inputs_tensor, model_kwargs):
        positions = self.prompt_position_ids(inputs_tensor, model_kwargs)
        if positions is None:
            return super()._prepare_position_ids_for_generation(inputs_tensor, model_kwargs)
        return positions


class PlaceholderCount:
    """Mixed in before a processor that counts an image's placeholders in `_get_number_of_features` (LLaVA-NeXT's
    anyres packing and its kin): the class defines `placeholders(image_size, full)`, the count to emit for an image
    of original (height, width) whose unpruned count is `full`."""

    def _get_number_of_features(self, orig_height: int, orig_width: int, height: int, width: int) -> int:
        full = super()._get_number_of_features(orig_height, orig_width, height, width)
        return self.placeholders((orig_height, orig_width), full)
