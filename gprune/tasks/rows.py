"""Reading one benchmark sample: its row, its images and its prompt, inside the runner's per-sample
error handling, so a bad row is one error record and never a lost benchmark.

Two guards lmms-eval's loop does not have:
- an image stored as a path instead of bytes must be a file under the dataset's folder: a parquet
  file cannot make the service open /etc/passwd or fetch a URL;
- lmms-eval loads truncated images silently (it sets PIL's LOAD_TRUNCATED_IMAGES). A sample is read
  strictly first; if only the lenient read works, it is scored as lmms-eval would score it, and
  flagged `truncated_image` on its record.
"""

from contextlib import contextmanager
from pathlib import Path

import datasets
from PIL import Image, ImageFile


class ImageOutsideDatasetError(ValueError):
    pass


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


def check_image_paths(docs, index: int, folder: Path) -> None:
    """Refuse a row whose image is a path (not embedded bytes) outside `folder`."""
    columns = _image_columns(docs)
    if not columns:
        return
    raw = docs.with_format("arrow")[index]  # undecoded: nothing is opened here
    root = folder.resolve()
    for column in columns:
        values = raw.column(column)[0].as_py()
        for value in values if isinstance(values, list) else [values]:
            if not value or value.get("bytes") is not None or value.get("path") is None:
                continue
            path = value["path"]
            if "://" in path or not Path(path).resolve().is_relative_to(root):
                raise ImageOutsideDatasetError(
                    f"image path {path!r} in column {column!r} is outside the dataset folder {root}; images must be "
                    f"embedded bytes or files under that folder")


def _load(visuals) -> None:
    for visual in visuals if isinstance(visuals, list) else [visuals]:
        if isinstance(visual, Image.Image):
            visual.load()


def read_sample(task, docs, index: int, folder: Path | None = None) -> tuple[dict, list, str, bool]:
    """(doc, visuals, text, truncated_image) for row `index`; raises on a row that cannot be read."""
    if folder is not None:
        check_image_paths(docs, index, folder)

    def read():
        doc = docs[index]
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
