"""The data a sweep reads, identified: a short fingerprint for the MLflow tag `dataset_fingerprint`, and each
benchmark as an MLflow dataset input (the runs table's Dataset column). Both hash each file's path, size and
first MiB (whole-file hashes of real datasets would take minutes)."""

import glob
import hashlib
import warnings
from importlib.metadata import version
from pathlib import Path

from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import Dataset, DatasetInput, InputTag

from gprune.benchmarks import task_config
from gprune.tasks.local import resolve_folder

from .tags import DATA_CONTEXT


def _hash_benchmark(digest, name: str, data_dir: str | None) -> Path | None:
    """Feed one benchmark's files to `digest`; returns its folder (None: shipped in a package)."""
    config = task_config(name)
    if "dataset_path" not in config:
        digest.update(f"{name}:easy-vqa=={version('easy-vqa')}".encode())
        return None
    folder = resolve_folder(config["dataset_path"], data_dir)
    for pattern in sorted(config["class"].required_files(config).values()):
        for file in sorted(glob.glob(str(folder / pattern))):
            path = Path(file)
            digest.update(f"{name}/{path.relative_to(folder)}:{path.stat().st_size}".encode())
            with open(path, "rb") as handle:
                digest.update(handle.read(1 << 20))
    return folder


def model_fingerprint(name_or_path: str) -> str:
    """The model a run used: its name, and for a folder (the built-in names' included) each config and weight
    file's name, size, first and last MiB, so retrained or swapped weights under the same name differ."""
    from gprune.checkpoints import TINY
    from gprune.loading import BUILT_IN

    digest = hashlib.sha256(name_or_path.encode())
    folder = TINY if name_or_path in BUILT_IN else Path(name_or_path).expanduser()
    if folder.is_dir():
        for path in sorted(p for p in folder.iterdir() if p.suffix in (".json", ".safetensors")):
            size = path.stat().st_size
            digest.update(f"{path.name}:{size}".encode())
            with open(path, "rb") as handle:
                digest.update(handle.read(1 << 20))
                handle.seek(max(0, size - (1 << 20)))
                digest.update(handle.read(1 << 20))
    return digest.hexdigest()[:16]


def dataset_fingerprint(benchmarks: list[str], data_dir: str | None) -> str:
    digest = hashlib.sha256()
    for name in sorted(benchmarks):
        _hash_benchmark(digest, name, data_dir)
    return digest.hexdigest()[:16]


def dataset_inputs(benchmarks: list[str], data_dir: str | None) -> list[DatasetInput]:
    """One MLflow dataset input per benchmark: its name, folder and digest, used for evaluation."""
    inputs = []
    for name in benchmarks:
        digest = hashlib.sha256()
        folder = _hash_benchmark(digest, name, data_dir)
        where = str(folder) if folder else f"https://pypi.org/project/easy-vqa/{version('easy-vqa')}/"
        with warnings.catch_warnings():  # MLflow registers its local-folder source twice and says so
            warnings.simplefilter("ignore", UserWarning)
            dataset = MetaDataset(resolve_dataset_source(where), name=name, digest=digest.hexdigest()[:16])
        inputs.append(DatasetInput(Dataset(**dataset.to_dict()), [InputTag(DATA_CONTEXT, "evaluation")]))
    return inputs
