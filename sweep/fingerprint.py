"""A short fingerprint of the data a sweep reads, for the MLflow tag `dataset_fingerprint`:
each file's path, size and first MiB (whole-file hashes of real datasets would take minutes)."""

import glob
import hashlib
from importlib.metadata import version
from pathlib import Path

from gprune.benchmarks import task_config
from gprune.tasks.local import resolve_folder


def dataset_fingerprint(benchmarks: list[str], data_dir: str | None) -> str:
    digest = hashlib.sha256()
    for name in sorted(benchmarks):
        config = task_config(name)
        if "dataset_path" not in config:  # shipped in a package
            digest.update(f"{name}:easy-vqa=={version('easy-vqa')}".encode())
            continue
        folder = resolve_folder(config["dataset_path"], data_dir)
        for pattern in sorted(config["class"].required_files(config).values()):
            for file in sorted(glob.glob(str(folder / pattern))):
                path = Path(file)
                digest.update(f"{name}/{path.relative_to(folder)}:{path.stat().st_size}".encode())
                with open(path, "rb") as handle:
                    digest.update(handle.read(1 << 20))
    return digest.hexdigest()[:16]
