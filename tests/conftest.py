import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local: fail rather than reach for a hub
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from gprune import load_model  # noqa: E402
from testbed.fixtures import write_fixtures  # noqa: E402


@pytest.fixture(scope="session")
def tiny():
    """(model, processor): the offline tiny LLaVA-NeXT, loaded once; tests set their own PruneConfig."""
    return load_model("tiny", device="cpu")


def random_image(height: int, width: int, seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.fixture(scope="session")
def images():
    """Images of several aspect ratios, so the anyres grid and unpadding differ between them."""
    return [random_image(h, w, seed) for seed, (h, w) in enumerate([(64, 64), (48, 80), (90, 40), (64, 96)])]


@pytest.fixture(scope="session")
def fixtures_dir(tmp_path_factory):
    """The eight benchmarks' fixtures (16 samples each), written once per test session."""
    return write_fixtures(tmp_path_factory.mktemp("data"), n=16, seed=0)
