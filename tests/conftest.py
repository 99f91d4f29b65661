import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local: fail rather than reach for a hub
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from gprune import load_model  # noqa: E402


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
    from testbed.fixtures import write_fixtures  # needs `datasets`, which the GPU tier's machine lacks

    return write_fixtures(tmp_path_factory.mktemp("data"), n=16, seed=0)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(url: str, process, what: str, seconds: float = 120) -> None:
    """Poll `url` until it answers, failing if `process` dies or `seconds` pass."""
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None, f"{what} never came up"
            time.sleep(0.5)


def start_gprune_ui(tracking_uri: str, port: int, experiment: str):
    """`gprune ui` as a user starts it; its first line of output is the link it prints."""
    import subprocess
    import sys
    from pathlib import Path

    return subprocess.Popen([sys.executable, "-m", "cli.main", "ui", "--tracking-uri", tracking_uri, "--port",
                             str(port), "--experiment", experiment], cwd=Path(__file__).resolve().parents[1],
                            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.fixture
def servers():
    """(free_port, wait_until_healthy) for tests that start a server of their own."""
    return free_port, wait_until_healthy


@pytest.fixture
def mlflow_server(tmp_path):
    """A real `mlflow server` on a private port: SQLite behind it, artifacts proxied into a folder of its own
    (--serve-artifacts), so clients read and write artifacts through HTTP only. Yields (uri, artifact folder)."""
    import signal
    import subprocess
    import sys

    port = free_port()
    artifacts = tmp_path / "server-artifacts"
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--backend-store-uri",
         f"sqlite:///{tmp_path / 'server.db'}", "--serve-artifacts", "--artifacts-destination", str(artifacts),
         "--workers", "1"],
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    wait_until_healthy(f"{uri}/health", server, "mlflow server")
    yield uri, artifacts
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)
