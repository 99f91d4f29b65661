"""Reading one benchmark sample: its row, its images and its prompt, inside the runner's per-sample
error handling, so a bad row is one error record and never a lost benchmark.

Guards lmms-eval's loop does not have:
- an image stored as a path instead of bytes must be a file under the dataset's folder: a parquet
  file cannot make the service open /etc/passwd or fetch a URL;
- an image's size is read from its header before it is decoded: above MAX_IMAGE_PIXELS it is an error
  (a 75 KB 1-bit PNG can decode to gigabytes);
- lmms-eval loads truncated images silently (it sets PIL's LOAD_TRUNCATED_IMAGES). A sample is read
  strictly first; if only the lenient read works, it is scored as lmms-eval would score it, and
  flagged `truncated_image` on its record;
- a row the task found bad while loading (text that is not UTF-8, a GQA image that is not there), an
  empty value in a column the task reads, or a missing image, fails with the column named.
"""

import io
import weakref
from contextlib import contextmanager
from pathlib import Path

import datasets
from PIL import Image, ImageFile

MAX_IMAGE_PIXELS = 64_000_000  # 8000 x 8000: above any benchmark's images (DocVQA's reach ~9 M)


class ImageOutsideDatasetError(ValueError):
    pass


class RowError(ValueError):
    """This row cannot be evaluated; the message names the column."""


@contextmanager
def _truncated_images(allowed: bool):
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = allowed
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before


def _image_columns(docs) -> list[str]:
    columns = []
    for name, feature in (getattr(docs, "features", None) or {}).items():
        inner = getattr(feature, "feature", feature)  # a list of images is a Sequence of Image
        if isinstance(inner, datasets.Image) or (isinstance(inner, list) and inner
                                                 and isinstance(inner[0], datasets.Image)):
            columns.append(name)
    return columns


_UNDECODED = weakref.WeakKeyDictionary()  # docs -> (image columns, an undecoded view, features), once per split


def _undecoded(docs) -> tuple[list[str], object, object]:
    """Made per row, the view cost 1.6 ms (datasets copies the dataset's state), more than the rest of a row, and
    `docs.features` a deep copy each time (0.1-0.2 ms)."""
    if docs not in _UNDECODED:
        columns = _image_columns(docs)
        _UNDECODED[docs] = columns, docs.with_format("arrow") if columns else None, docs.features if columns else None
    return _UNDECODED[docs]


def check_images(docs, index: int, folder: Path | None):
    """Refuse a row whose image is missing, is a path (not embedded bytes) outside `folder`, or whose header
    says it has more than MAX_IMAGE_PIXELS pixels, before anything is decoded; returns the row undecoded (an Arrow
    table of one row; None for a split without images)."""
    columns, view, _ = _undecoded(docs)
    if not columns:
        return None
    raw = view[index]  # undecoded: nothing is opened here
    for column in columns:
        values = raw.column(column)[0].as_py()
        for value in values if isinstance(values, list) else [values]:
            if not value or (value.get("bytes") is None and value.get("path") is None):
                raise RowError(f"column {column!r}: the row has no image")
            if value.get("bytes") is None and folder is not None:
                path, root = value["path"], folder.resolve()
                if "://" in path or not Path(path).resolve().is_relative_to(root):
                    raise ImageOutsideDatasetError(
                        f"image path {path!r} in column {column!r} is outside the dataset folder {root}; images "
                        "must be embedded bytes or files under that folder")
            _check_pixels(value, column)
    return raw


def _check_pixels(value: dict, column: str) -> None:
    source = io.BytesIO(value["bytes"]) if value.get("bytes") is not None else value["path"]
    try:
        with Image.open(source) as image:  # reads the header only
            width, height = image.size
    except Exception:
        return  # unreadable: decoding says why, in the row's own error
    if width * height > MAX_IMAGE_PIXELS:
        raise RowError(f"column {column!r}: a {width} x {height} image ({width * height / 1e6:.0f} M pixels) is over "
                       f"the {MAX_IMAGE_PIXELS / 1e6:.0f} M pixel budget that bounds memory; no benchmark has one")


def _check_values(task, doc: dict) -> None:
    """A column the task reads that is empty in this row fails here, named, not deep in lmms-eval."""
    metadata = getattr(task.config, "metadata", None) or {}
    nullable = set(metadata.get("nullable", []))
    empty = [c for c in metadata.get("columns", []) if c not in nullable and c in doc and doc[c] is None]
    if empty:
        raise RowError(f"column(s) {', '.join(map(repr, empty))} empty (None) in this row")


def _load(visuals) -> None:
    for visual in visuals if isinstance(visuals, list) else [visuals]:
        if isinstance(visual, Image.Image):
            visual.load()


def read_sample(task, docs, index: int, folder: Path | None = None) -> tuple[dict, list, str, bool]:
    """(doc, visuals, text, truncated_image) for row `index`; raises on a row that cannot be read."""
    problem = getattr(task, "row_problems", {}).get(index)
    if problem:
        raise RowError(problem)
    raw = check_images(docs, index, folder)

    def read():  # the row checked above, decoded (as docs[index] would, without fetching it again)
        doc = docs[index] if raw is None else _undecoded(docs)[2].decode_example(raw.to_pylist()[0])
        _check_values(task, doc)
        visuals = task.doc_to_visual(doc)
        _load(visuals)
        return doc, visuals, task.doc_to_text(doc)

    try:
        with _truncated_images(False):
            return (*read(), False)
    except (OSError, SyntaxError) as strict_error:  # PIL: "image file is truncated", "broken PNG file"
        try:
            with _truncated_images(True):
                return (*read(), True)
        except Exception:
            raise strict_error from None
