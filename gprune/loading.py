"""load_model: a model of any family G-Prune prunes and its processor, ready to prune, from a name, a local path or a
hub id (the family is read from the checkpoint's config.json: gprune/families/)."""

import json
import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from transformers import AutoConfig, GenerationConfig

from .checkpoint_fit import check_folder, check_runs, read_config
from .checkpoints import TINY
from .config import PruneConfig
from .families import FAMILIES, Family, family_of_type, misfits, set_prune
from .transformers_api import set_attention_implementation

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name
BUILT_IN = ("tiny", "tiny-random")


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The device to run on: CUDA when present by default; one that cannot run here is one clear error, before
    any weight loads."""
    try:
        device = torch.device(device) if device is not None else default_device()
    except RuntimeError as error:
        raise ValueError(f"device={device!r} is not a torch device; use cpu, cuda or cuda:N") from error
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device={str(device)!r} cannot run the model; use cpu, cuda or cuda:N")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device={str(device)!r}: no CUDA GPU is visible on this machine "
                             "(torch.cuda.is_available() is False); use --device cpu")
        if device.index is not None and device.index >= count:
            raise ValueError(f"device={str(device)!r}: this machine has {count} CUDA GPU(s), cuda:0..cuda:{count - 1}")
    return device


def check_checkpoint_folder(path: Path) -> None:
    """Fail in milliseconds, before any weight loads, unless `path` holds a checkpoint of a family G-Prune prunes."""
    config_file = path / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{path} holds no config.json: not a saved checkpoint; pass a folder written by "
                                f"save_pretrained or `hf download {FAMILIES[0].example} --local-dir DIR`")
    try:
        model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{config_file} is not valid JSON ({error}); the checkpoint is damaged") from error
    family = family_of_type(model_type, str(path))
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise FileNotFoundError(f"{path} has a {family.name} config.json but no weights (*.safetensors or *.bin); "
                                "copy the whole checkpoint folder")
    check_folder(path, family)
    check_weights(path)


def check_weights(path: Path) -> None:
    """The safetensors files' headers against the config, before anything is allocated: every parameter the
    config implies must be there at its shape (compared as shapes, since checkpoints name tensors in older
    layouts that loading renames). A damaged file, a config from another model size, or missing weights
    (which transformers would otherwise create at random, as large as the config says) is one clear error."""
    from collections import Counter

    files = sorted(path.glob("*.safetensors"))
    if not files:
        return  # *.bin weights: read only by loading them
    found = Counter()
    for file in files:
        try:
            with safe_open(str(file), "pt") as weights:
                found.update(tuple(weights.get_slice(key).get_shape()) for key in weights.keys())
        except (SafetensorError, OSError) as error:
            raise ValueError(f"{file}: a weight file is damaged ({error}); copy the checkpoint again") from None
    config = read_config(path)
    with torch.device("meta"):  # shapes only: no memory
        model = family_of_type(config.model_type, str(path)).model(config)
    expected = Counter(tuple(p.shape) for p in model.parameters())
    missing = expected - found
    if missing:
        wanted, have = sum(expected.values()), sum(found.values())
        shapes = ", ".join(f"{count} x {list(shape)}" for shape, count in missing.most_common(3))
        raise ValueError(f"{path}: the weights do not match config.json: {sum(missing.values())} of the {wanted} "
                         f"tensors it implies are not in the weight files (e.g. {shapes}; the files hold {have}). "
                         "The config and weights are from different models: copy the checkpoint folder again")


def check_model_source(name_or_path: str) -> str:
    """What `load_model` will read (a built-in name, a checked checkpoint folder, or a hub id), or one
    clear error, without loading anything."""
    path = Path(name_or_path).expanduser()
    if name_or_path in BUILT_IN:
        return name_or_path
    if path.is_dir():
        check_checkpoint_folder(path)
        return str(path)
    if HUB_ID.match(name_or_path):
        return name_or_path
    families = " or ".join(family.name for family in FAMILIES)
    raise FileNotFoundError(
        f"model path {name_or_path!r} does not exist or is not a directory; pass a directory holding a "
        f"{families} checkpoint (config.json, *.safetensors, processor files), "
        f"a hub id such as {FAMILIES[0].example!r}, or one of {', '.join(BUILT_IN)}"
    )


def model_config(name_or_path: str):
    """The model's config alone (no weights), to check a pruning config against it before loading; None for a
    hub id that is not in the local cache (it is checked when it loads)."""
    source = str(TINY) if name_or_path in BUILT_IN else check_model_source(name_or_path)
    try:
        return read_config(Path(source)) if Path(source).is_dir() else AutoConfig.from_pretrained(
            source, local_files_only=True)
    except OSError:
        if Path(source).is_dir():
            raise
        return None


def check_prune_fits(prune: PruneConfig, name_or_path: str) -> None:
    """One clear error, before any weight loads, if `prune` cannot act on this model (e.g. FastV's lm_layer at
    or past the language model's depth)."""
    config = model_config(name_or_path)
    why = misfits(prune, config) if config is not None else []
    if why:
        raise ValueError(f"{'; '.join(why)} (model {name_or_path})")


def _family(source: str) -> Family:
    """The family of a checked folder, a built-in name or a hub id (from the local cache, else the hub)."""
    try:
        config = AutoConfig.from_pretrained(source, local_files_only=True)
    except OSError:
        if Path(source).is_dir() or os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
            raise
        config = AutoConfig.from_pretrained(source)
    return family_of_type(config.model_type, source)


def _load_pretrained(name_or_path: str, dtype, attn_implementation, processor_kwargs=None):
    path = Path(name_or_path).expanduser()
    source = check_model_source(name_or_path)
    kwargs = {"dtype": dtype, "attn_implementation": attn_implementation}
    try:  # a local directory or the local hub cache first: works offline
        family = _family(source)
        model = family.model.from_pretrained(source, local_files_only=True, **kwargs)
        processor = family.processor.from_pretrained(source, local_files_only=True, **(processor_kwargs or {}))
    except SafetensorError as error:
        raise ValueError(f"{source}: a weight file is damaged ({error}); copy the checkpoint again") from None
    except OSError as local_error:
        if path.is_dir():
            raise OSError(f"could not load a model from {source} ({local_error}); the folder needs the config, "
                          "weights and processor files that save_pretrained writes") from local_error
        if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
            raise OSError(
                f"could not load {source!r} without network access ({local_error}). On a machine "
                f"with internet, run `hf download {name_or_path} --local-dir DIR` once and pass DIR"
            ) from local_error
        family = _family(source)
        model = family.model.from_pretrained(source, **kwargs)
        processor = family.processor.from_pretrained(source, **(processor_kwargs or {}))
    return model, processor


def _tiny_random(attn_implementation):
    """The shipped tiny checkpoint's architecture and processor at random init (seed 0): plumbing, no skill."""
    config = AutoConfig.from_pretrained(TINY)
    if attn_implementation:
        set_attention_implementation(config, attn_implementation)
    family = family_of_type(config.model_type, str(TINY))
    torch.manual_seed(0)
    model = family.model(config)
    model.generation_config = GenerationConfig.from_pretrained(TINY)
    return model, family.processor.from_pretrained(TINY, backend="pil")


def load_model(
    name_or_path: str = "tiny",
    prune: PruneConfig | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    attn_implementation: str | None = None,
    image_backend: str | None = None,
):
    """(model, processor): a pruning model of its family (`...ForConditionalGeneration`) in eval mode, and its
    processor.

    `name_or_path`: "tiny" (the small LLaVA-NeXT trained by `gprune train-tiny`, shipped in the
    package), "tiny-random" (its architecture at random init, for plumbing), a local checkpoint
    directory, or a hub id (taken from the local cache when offline). `device` defaults to CUDA when
    present, `dtype` to bfloat16 on CUDA and float32 on CPU. Change the pruning later with
    `gprune.set_prune(model, processor, cfg)`: no reload needed. `image_backend` ("pil" or
    "torchvision") picks the image processor's backend for a checkpoint; transformers' default
    otherwise. The tiny checkpoints were trained on "pil", which "tiny" uses.
    """
    device = resolve_device(device)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    if name_or_path == "tiny-random":
        model, processor = _tiny_random(attn_implementation)
    elif name_or_path == "tiny":
        if not (TINY / "model.safetensors").is_file():
            raise FileNotFoundError(f"the trained tiny checkpoint is missing from {TINY}; recreate it with "
                                    f"`gprune train-tiny --out {TINY}`")
        # It was trained on the PIL image processor; the torchvision one resizes slightly differently.
        model, processor = _load_pretrained(str(TINY), dtype, attn_implementation, {"backend": image_backend or "pil"})
    else:
        backend = {"backend": image_backend} if image_backend else None
        model, processor = _load_pretrained(name_or_path, dtype, attn_implementation, backend)
    model = model.to(device=device, dtype=dtype).eval()
    model.name_or_path = name_or_path
    processor.tokenizer.padding_side = "left"  # batched generation needs the prompts right-aligned
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    check_runs(model, processor, name_or_path)  # before any benchmark: files that do not fit fail once, here
    set_prune(model, processor, prune or PruneConfig())
    return model, processor
