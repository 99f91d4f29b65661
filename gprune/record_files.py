"""Per-sample records as files: Parquet, one row per sample, a column per field of `SampleRecord` and one for its
benchmark, with a schema version; read back by column and by benchmark, a file at a time, so a reader holds what it
asked for and nothing else. A file may also carry one JSON document in its metadata (a sweep's slice keeps its
result there: written together, so the file is whole or absent). JSON records (`records.json`, sweeps before
Parquet) still read.

A run's records are one file or a folder of them (a trial's slices); `read_records` takes either. A file named
`<benchmark>.<anything>.parquet` holds that benchmark's records only (a slice's), so a reader of other benchmarks
never opens it: at full size a run is 256 slice files, and the report reads a benchmark at a time."""

import json
import os
from dataclasses import asdict, fields
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .benchmarks import TASKS
from .records import SampleRecord

SCHEMA_VERSION = 1
VERSION_KEY, DOCUMENT_KEY = b"gprune.records.version", b"gprune.document"
JSON_FIELDS = ("results", "images")  # free-form per benchmark: kept as JSON text
_TYPES = {int: pa.int64(), float: pa.float64(), str: pa.string(), bool: pa.bool_()}


def _arrow_type(annotation) -> pa.DataType:
    for python, arrow in _TYPES.items():  # "int | None" and the like: the first type named
        if python.__name__ in str(annotation):
            return arrow
    return pa.string()


SCHEMA = pa.schema([pa.field("benchmark", pa.string())] + [
    pa.field(f.name, pa.string() if f.name in JSON_FIELDS else _arrow_type(f.type)) for f in fields(SampleRecord)])
COLUMNS = tuple(SCHEMA.names)


def _row(benchmark: str, record) -> dict:
    row = dict(record) if isinstance(record, dict) else asdict(record)
    for name in JSON_FIELDS:
        row[name] = json.dumps(row.get(name) or ({} if name == "results" else []), default=str)
    return {"benchmark": benchmark, **{name: row.get(name) for name in COLUMNS[1:]}}


def write_records(path, records: dict[str, list], document: dict | None = None) -> Path:
    """{benchmark: [SampleRecord or its dict]} as one Parquet file, with `document` (JSON) in its metadata; whole
    or not at all: written beside, then renamed over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [_row(name, record) for name, batch in records.items() for record in batch]
    metadata = {VERSION_KEY: str(SCHEMA_VERSION).encode()}
    if document is not None:
        metadata[DOCUMENT_KEY] = json.dumps(document, default=str).encode()
    table = pa.Table.from_pylist(rows, schema=SCHEMA.with_metadata(metadata))
    partial = path.with_name(path.name + ".partial")
    pq.write_table(table, partial, compression="zstd")
    os.replace(partial, path)
    return path


def record_files(path, benchmarks=None) -> list[Path]:
    """The Parquet files of a run's records: `path` itself, or every one under the folder, in name order, but for
    those named for a benchmark not in `benchmarks`."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.rglob("*.parquet")
                  if benchmarks is None or p.name.split(".")[0] not in TASKS or p.name.split(".")[0] in benchmarks)


def document(path) -> dict | None:
    """The JSON document a file carries in its metadata (None if it has none); reads the footer only."""
    metadata = pq.read_schema(path).metadata or {}
    return json.loads(metadata[DOCUMENT_KEY]) if DOCUMENT_KEY in metadata else None


def _check(path: Path) -> None:
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (pa.ArrowInvalid, OSError) as error:
        raise ValueError(f"{path} is damaged ({error}); it is not the Parquet a sweep writes: log the run again "
                         "(`gprune sweep --resume`), or leave the run out") from None
    version = int(metadata.get(VERSION_KEY, b"0"))
    if version != SCHEMA_VERSION:
        raise ValueError(f"{path} holds records of schema version {version}; this gprune reads version "
                         f"{SCHEMA_VERSION}: read it with the gprune that wrote it, or log the run again")


def iter_records(path, benchmarks=None, columns=None, below_index: int | None = None):
    """(benchmark, record dict) of a run's records, a file at a time: only `columns` (default all; `benchmark`
    and `index` always), only `benchmarks` (default all), only indices below `below_index`."""
    path = Path(path)
    if path.suffix == ".json":  # records of a sweep before Parquet
        for name, rows in _read_json(path).items():
            if benchmarks is None or name in benchmarks:
                for row in rows:
                    if below_index is None or row["index"] < below_index:
                        yield name, row if columns is None else {c: row.get(c) for c in {"index", *columns}}
        return
    wanted = list(COLUMNS) if columns is None else ["benchmark", "index", *(c for c in columns if c not in
                                                                             ("benchmark", "index"))]
    unknown = sorted(set(wanted) - set(COLUMNS))
    if unknown:
        raise ValueError(f"records have no column {', '.join(unknown)}; they have {', '.join(COLUMNS)}")
    filters = []
    if benchmarks is not None:
        filters.append(("benchmark", "in", list(benchmarks)))
    if below_index is not None:
        filters.append(("index", "<", below_index))
    for file in record_files(path, benchmarks):
        _check(file)
        table = pq.read_table(file, columns=wanted, filters=filters or None)
        parsed = {}  # JSON text -> value: most rows' results repeat a few (VQA accuracy takes 4 values)
        for row in table.to_pylist():
            for name in JSON_FIELDS:
                if name in row:
                    text = row[name] or ("{}" if name == "results" else "[]")
                    if text not in parsed:
                        parsed[text] = json.loads(text)
                    row[name] = parsed[text]  # shared between the rows that wrote the same: read, never change
            yield row.pop("benchmark"), row


def read_records(path, benchmarks=None, columns=None, below_index: int | None = None) -> dict[str, list[dict]]:
    """{benchmark: [record dict]} of a run's records (a Parquet file, a folder of them, or a records.json), in
    sample order, with only what is asked (see iter_records)."""
    out: dict[str, list[dict]] = {}
    for name, row in iter_records(path, benchmarks, columns, below_index):
        out.setdefault(name, []).append(row)
    for rows in out.values():
        rows.sort(key=lambda row: row["index"])
    return out


def _read_json(path: Path) -> dict:
    try:
        records = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is damaged ({error}); it is not the JSON a sweep writes: log the run again "
                         "(`gprune sweep --resume`), or leave the run out") from None
    shaped = isinstance(records, dict) and all(
        isinstance(rows, list) and all(isinstance(r, dict) for r in rows) for rows in records.values())
    if not shaped:
        raise ValueError(f"{path} is not a sweep's records (expected {{benchmark: [record, ...]}}, got "
                         f"{type(records).__name__}); log the run again (`gprune sweep --resume`), or leave it out")
    return records
