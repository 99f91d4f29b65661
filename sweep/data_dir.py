"""Where a sweep's or a suite's benchmark data is: its `data_dir`, or fixtures written once when it asks for
generated data (`fixtures: {n, seed}`)."""

from pathlib import Path

from testbed.fixtures import write_fixtures


def prepare_data(spec) -> str | None:
    """The data directory, writing fixtures first when the spec (a SweepSpec or a Suite) asks for generated data."""
    if spec.data_dir is not None:
        return str(Path(spec.data_dir).resolve())
    if spec.fixtures is None:
        return None
    n, seed = spec.fixtures.n, spec.fixtures.seed
    folder = Path(".data") / f"fixtures-n{n}-s{seed}"
    if not (folder / ".complete").exists():
        write_fixtures(folder, n=n, seed=seed)
        (folder / ".complete").touch()
    return str(folder.resolve())
