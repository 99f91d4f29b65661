"""lmms-eval tasks that read their dataset from a local data directory instead of the hub.

A task YAML names `class: !function gprune.tasks.local.LocalTask`, a `dataset_path` folder under
the data directory (`GPRUNE_DATA_DIR`, or an absolute path) and, in `dataset_kwargs.data_files`,
the parquet files of each split in the Hugging Face hub layout, exactly as `hf download
lmms-lab/<dataset> --repo-type dataset --local-dir <data dir>/<folder>` lays them out. Everything
else (prompts, generation kwargs, process_results, aggregation) is lmms-eval's own.
"""

import glob
import os
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from lmms_eval.api.task import ConfigurableTask

from . import DataLayoutError

DATA_DIR_ENV = "GPRUNE_DATA_DIR"


def resolve_folder(folder: str, data_dir: str | None = None) -> Path:
    if os.path.isabs(folder):
        return Path(folder)
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV)
    if not data_dir:
        raise DataLayoutError(f"no data directory: pass --data-dir or set {DATA_DIR_ENV} (generate fixtures with "
                              f"`gprune fixtures --out DIR`)")
    return Path(data_dir) / folder


def split_files(task: str, folder: Path, patterns: dict[str, str], hub: str) -> dict[str, list[str]]:
    """Each split's parquet files, or a DataLayoutError naming the task, the path and the layout."""
    files = {split: sorted(glob.glob(str(folder / pattern))) for split, pattern in patterns.items()}
    missing = [pattern for split, pattern in patterns.items() if not files[split]]
    if missing:
        raise DataLayoutError(
            f"task {task}: no files match {', '.join(missing)} under {folder}; expected {hub}'s hub layout there "
            f"(`hf download {hub} --repo-type dataset --local-dir {folder}`), or fixtures from "
            f"`gprune fixtures --out {folder.parent}`"
        )
    return files


def hub_dataset(config: dict) -> str:
    return (config.get("metadata") or {}).get("hub_dataset", "the lmms-lab dataset")


def table_problems(files: list[str], columns: list[str]) -> list[str]:
    """What is wrong with one split's parquet files: unreadable, lacking a column the task reads, or no
    rows at all. Only the files' footers are read."""
    problems, rows, first = [], 0, None
    for path in files:
        try:
            schema, rows = pq.read_schema(path), rows + pq.read_metadata(path).num_rows
        except Exception as error:  # 0-byte, truncated or not parquet at all
            problems.append(f"{path} is not a readable parquet file ({type(error).__name__}: {error})")
            continue
        missing = [column for column in columns if column not in schema.names]
        if missing:
            problems.append(f"{path} lacks column(s) {', '.join(missing)} (has {', '.join(schema.names)})")
        if "image" in columns and "image" in schema.names and not _is_image(schema.field("image").type):
            problems.append(f"{path}'s column image holds {schema.field('image').type}, not images (the datasets "
                            "Image feature: a struct of bytes and path)")
        first = first or (path, schema)
        differing = _schema_difference(first[1], schema)
        if differing:  # the shards of one split are read as one table
            problems.append(f"{path}'s columns differ from {first[0]}'s ({differing}): the shards of one split must "
                            "share one schema")
    if not problems and rows == 0:
        problems.append(f"{', '.join(files)} hold(s) no rows")
    return problems


def _is_image(kind) -> bool:
    return pa.types.is_struct(kind) and {"bytes", "path"} <= {kind.field(i).name for i in range(kind.num_fields)}


def _schema_difference(a, b) -> str:
    """What differs between two files' columns, or ''."""
    names_a, names_b = set(a.names), set(b.names)
    if names_a != names_b:
        return "; ".join(part for part in (
            f"only the first has {', '.join(sorted(names_a - names_b))}" if names_a - names_b else "",
            f"only this one has {', '.join(sorted(names_b - names_a))}" if names_b - names_a else "") if part)
    return "; ".join(f"{name}: {a.field(name).type} vs {b.field(name).type}" for name in a.names
                     if a.field(name).type != b.field(name).type)


def check_tables(task: str, folder: Path, files: dict[str, list[str]], columns: dict[str, list[str]],
                 hub: str) -> None:
    """A DataLayoutError listing every unreadable file, missing column and empty split, with the fix."""
    problems = [problem for split, names in columns.items() for problem in table_problems(files[split], names)]
    if problems:
        raise DataLayoutError(
            f"task {task}: " + "; ".join(problems) + f". The files must be {hub}'s parquet files: download them "
            f"again (`hf download {hub} --repo-type dataset --local-dir {folder}`) or regenerate fixtures")


class LocalTask(ConfigurableTask):
    """lmms-eval reads row 0 while a task loads (its prompt and target, with images decoded): a bad row 0
    would stop the benchmark there. So until the task stands, images stay undecoded and row 0's prompt
    and target are read leniently; text that is not valid UTF-8 is set aside per row (`row_problems`).
    Each row is then read for real by the runner, inside its per-sample error handling (gprune/tasks/rows.py),
    where a bad one becomes one error record naming its column."""

    def __init__(self, config: dict, data_dir: str | None = None, **kwargs):
        config = {k: v for k, v in config.items() if k != "class"}
        self.local_folder = resolve_folder(config["dataset_path"], data_dir)
        patterns = config["dataset_kwargs"]["data_files"]
        files = split_files(config["task"], self.local_folder, patterns, hub_dataset(config))
        config["dataset_kwargs"] = {"data_files": files}
        config["dataset_path"], config["dataset_name"] = "parquet", None
        self.row_problems: dict[int, str] = {}  # test-split row -> what is wrong with it, found while loading
        self.loading = True
        super().__init__(config=config, **kwargs)
        self.loading = False
        self.decode_images(True)

    def download(self, dataset_kwargs=None) -> None:
        super().download(dataset_kwargs)
        self.decode_images(False)
        self.set_aside_invalid_text()

    def doc_to_text(self, doc, *args, **kwargs):
        return self._lenient_while_loading(super().doc_to_text, doc, *args, **kwargs)

    def doc_to_target(self, doc, *args, **kwargs):
        return self._lenient_while_loading(super().doc_to_target, doc, *args, **kwargs)

    def _lenient_while_loading(self, read, doc, *args, **kwargs):
        if not self.loading:
            return read(doc, *args, **kwargs)
        try:
            return read(doc, *args, **kwargs)
        except Exception:  # lmms-eval's look at row 0: the row fails again, as one error record, when it runs
            return ""

    def set_aside_invalid_text(self) -> None:
        """Text columns holding bytes that are not UTF-8 cannot even be read as rows: each such value becomes
        None and its row is remembered with the column and byte, to fail alone when it is evaluated."""
        split = self.config.test_split
        data = self.dataset[split]
        for column, feature in data.features.items():
            if not (isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")):
                continue
            raw = data.data.column(column).cast(pa.large_binary()).to_pylist()
            invalid = {}
            for row, value in enumerate(raw):
                try:
                    value is None or value.decode("utf-8")
                except UnicodeDecodeError as error:
                    invalid[row] = f"column {column!r} is not UTF-8 text ({error.reason} at byte {error.start})"
            if invalid:
                clean = [None if row in invalid else value.decode("utf-8") if value is not None else None
                         for row, value in enumerate(raw)]
                data = data.remove_columns(column).add_column(column, clean, feature=feature)
                for row, problem in invalid.items():
                    self.row_problems[row] = "; ".join(filter(None, [self.row_problems.get(row), problem]))
        self.dataset[split] = data

    def decode_images(self, decode: bool) -> None:
        for split, data in self.dataset.items():
            for column, feature in data.features.items():
                if isinstance(feature, datasets.Image):
                    self.dataset[split] = self.dataset[split].cast_column(column, datasets.Image(decode=decode))
        if hasattr(self, "task_docs"):
            self.task_docs = self.test_docs()

    @classmethod
    def required_files(cls, config: dict) -> dict[str, str]:
        return dict(config["dataset_kwargs"]["data_files"])

    @classmethod
    def required_columns(cls, config: dict) -> dict[str, list[str]]:
        """Per entry of required_files: the columns lmms-eval's functions read (the YAML's metadata)."""
        return {config["test_split"]: list((config.get("metadata") or {}).get("columns", []))}

    @classmethod
    def check_data(cls, config: dict, data_dir: str | None = None) -> None:
        """Raise DataLayoutError (naming task, path, layout) unless every file the task reads is there, is
        parquet, has the columns the task reads and the test split has rows."""
        folder = resolve_folder(config["dataset_path"], data_dir)
        files = split_files(config["task"], folder, cls.required_files(config), hub_dataset(config))
        check_tables(config["task"], folder, files, cls.required_columns(config), hub_dataset(config))


class GQALocalTask(LocalTask):
    """GQA keeps questions and images in two configs joined by imageId; join them from local files
    (lmms-eval's own GQA task fetches the image config from the hub)."""

    IMAGES = "testdev_balanced_images/testdev-*.parquet"

    @classmethod
    def required_files(cls, config: dict) -> dict[str, str]:
        return {**super().required_files(config), "images": cls.IMAGES}

    @classmethod
    def required_columns(cls, config: dict) -> dict[str, list[str]]:
        return {**super().required_columns(config), "images": ["id", "image"]}

    def download(self, dataset_kwargs=None) -> None:
        super().download(dataset_kwargs)
        files = split_files(self.config.task, self.local_folder, {"testdev": self.IMAGES}, "lmms-lab/GQA")["testdev"]
        images = datasets.load_dataset("parquet", data_files=files, split="train")
        images = images.cast_column("image", datasets.Image(decode=False))  # copy bytes, decode on use
        row_of = {image_id: row for row, image_id in enumerate(images["id"])}
        features = self.dataset[self.config.test_split].features.copy()
        features["image"] = datasets.Image()
        def join(doc, row):
            if doc["imageId"] not in row_of:  # that row alone fails, naming it, when it runs
                self.row_problems[row] = (f"column 'imageId': {doc['imageId']!r} has no image in "
                                          f"{self.IMAGES} (the questions and images are from different releases?)")
                return {"image": None}
            return {"image": images[row_of[doc["imageId"]]]["image"]}

        for split in self.dataset:
            self.dataset[split] = self.dataset[split].map(join, with_indices=True, features=features)
        self.decode_images(False)  # as every local task, until it stands


class EasyVQATask(ConfigurableTask):
    """easy-VQA's test split from the `easy-vqa` pip package: always available, nothing to download."""

    def __init__(self, config: dict, data_dir: str | None = None, **kwargs):
        super().__init__(config={k: v for k, v in config.items() if k != "class"}, **kwargs)

    @classmethod
    def check_data(cls, config: dict, data_dir: str | None = None) -> None:
        """Nothing to check: the data ships with the package."""

    def download(self, dataset_kwargs=None) -> None:
        import easy_vqa

        questions, answers, image_ids = easy_vqa.get_test_questions()
        paths = easy_vqa.get_test_image_paths()
        test = datasets.Dataset.from_dict({
            "question_id": [f"test-{i}" for i in range(len(questions))],
            "question": questions, "answer": answers, "image_id": image_ids,
            "image": [paths[i] for i in image_ids],
        }).cast_column("image", datasets.Image())
        self.dataset = datasets.DatasetDict({"test": test})
        self.dataset_no_image = datasets.DatasetDict({"test": test.remove_columns("image")})
