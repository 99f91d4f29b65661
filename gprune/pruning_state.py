"""What a pruned model and its processor read as they run, in one object both hold: `set_prune` changes the config
here once and both see it; the worker sets the feature cache, the runner the trace and the next batch's cache keys.
Nothing of it lives on a class, so two loaded models never share it."""

from dataclasses import dataclass, field

from .config import PruneConfig
from .feature_cache import FeatureCache


@dataclass
class PruningState:
    prune: PruneConfig = field(default_factory=PruneConfig)
    layout_config: object = None  # the model's config: the processor counts each image's kept tokens with it
    feature_cache: FeatureCache | None = None  # see gprune.feature_cache; None: no caching
    images_encoded: int = 0  # images that went through the vision tower (cache misses included, hits not)
    # a list: each image's (features, or a language-model method's scores; kept indices; layout) is appended as it is
    # pruned, references only (no copy, no host sync), for gprune.figure_samples; None: nothing kept
    trace: list | None = None
    # the next encoding's images' feature-cache keys in order, made on the host from the images
    # (gprune.generation.prepare_batch); None: the cache hashes the pixels it is given
    cache_keys: list[str] | None = None
