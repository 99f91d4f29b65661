"""How generate() decodes: which KV cache it keeps, and whether its decode step is compiled.

A dynamic cache grows by one token per step and cannot be compiled; a static cache is allocated once
at a fixed length, so transformers can compile the one-token decode step (with CUDA graphs on a GPU,
`mode="reduce-overhead"`), which removes the per-step Python and kernel-launch overhead. The static
length is rounded up to a multiple of `bucket` tokens, so the prompts of a sweep's pruning ratios
share a few compiled shapes instead of compiling one each. Greedy answers are the same on both paths
(tests check it on CPU in float32 and bfloat16).
"""

from dataclasses import dataclass, field

from .transformers_api import allow_compiled_shapes, compile_config_for_every_device

CACHES = ("auto", "static", "dynamic")
# compiled decode steps kept per process: one per (batch size, cache-length bucket) that a sweep meets; dynamo's
# default of 8 is reached by a sweep over ratios at two batch sizes, after which steps run uncompiled
COMPILED_SHAPES = 64
COMPILE = ("auto", "on", "off")


def _is_cuda(device) -> bool:
    """True for torch.device('cuda'), 'cuda' and 'cuda:1' alike."""
    return str(getattr(device, "type", device)).startswith("cuda")


@dataclass(frozen=True)
class Decoding:
    cache: str = field(default="auto", metadata={
        "help": "KV cache: static (fixed length, compilable), dynamic, or auto (static on CUDA, else dynamic)",
        "choices": CACHES})
    compile: str = field(default="auto", metadata={
        "help": "compile the decode step: auto (on CUDA with a static cache), on (any device), off",
        "choices": COMPILE})
    bucket: int = field(default=256, metadata={"help": "a static cache's length is rounded up to a multiple of this"})

    def __post_init__(self):
        if self.cache not in CACHES:
            raise ValueError(f"cache={self.cache!r} must be one of {', '.join(CACHES)}")
        if self.compile not in COMPILE:
            raise ValueError(f"compile={self.compile!r} must be one of {', '.join(COMPILE)}")
        if isinstance(self.bucket, bool) or not isinstance(self.bucket, int) or self.bucket < 1:
            raise ValueError(f"bucket={self.bucket!r} must be an integer >= 1")
        if self.compile == "on" and self.cache == "dynamic":
            raise ValueError("compile=on needs cache=static (or auto): a dynamic cache changes shape every step")

    def cache_on(self, device) -> str:
        """The cache this device gets: auto is static on CUDA (where compiling pays), dynamic elsewhere."""
        if self.cache != "auto":
            return self.cache
        return "static" if _is_cuda(device) else "dynamic"

    def compiles_on(self, device) -> bool:
        """Whether generate() will compile the decode step on `device` (transformers' own rule for auto)."""
        if self.cache_on(device) != "static" or self.compile == "off":
            return False
        return self.compile == "on" or _is_cuda(device)

    def describe(self, device) -> str:
        return f"{self.cache_on(device)} KV cache, decode step {'compiled' if self.compiles_on(device) else 'eager'}"

    def generate_kwargs(self, device, prompt_length: int, max_new_tokens: int) -> dict:
        """Keyword arguments for model.generate() on `device` for prompts of `prompt_length` tokens."""
        if self.cache_on(device) == "dynamic":
            return {"disable_compile": True}
        length = -(-(prompt_length + max_new_tokens) // self.bucket) * self.bucket
        kwargs = {"cache_implementation": "static", "max_cache_len": length}
        if self.compiles_on(device):
            allow_compiled_shapes(COMPILED_SHAPES)
        if self.compile == "off":
            kwargs["disable_compile"] = True
        elif self.compile == "on":
            kwargs["compile_config"] = compile_config_for_every_device()
        return kwargs
