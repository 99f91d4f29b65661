"""Reading a user's YAML file (a sweep file, a regression suite): one clear error naming the file for a
syntax error, a key written twice (YAML would keep the last silently) or a file that expands into more
values than any sweep needs (aliases nest: a 1 KB file can stand for hundreds of millions of values,
which validating or printing would try to build)."""

import reprlib
from pathlib import Path

import yaml

MAX_BYTES = 1_000_000
MAX_VALUES = 100_000  # scalars after aliases are expanded: far above any real sweep, far below trouble


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is written twice (lines {seen[key] + 1} and "
                                f"{key_node.start_mark.line + 1}); keep one", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def _count_values(data, limit: int) -> int:
    """Scalars in `data` with shared (aliased) parts counted each time they appear, stopping past `limit`."""
    count, stack = 0, [data]
    while stack and count <= limit:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            count += 1
    return count


def load_yaml(path: Path, what: str):
    """The parsed file, or ValueError naming `what` and the file."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ValueError(f"{what} {path} is {size:,} bytes; a {what} is a few KB (at most {MAX_BYTES:,})")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except UnicodeDecodeError as error:
        raise ValueError(f"{what} {path} is not UTF-8 text ({error})") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{what} {path} is not valid YAML: {error}") from None
    if _count_values(data, MAX_VALUES) > MAX_VALUES:
        raise ValueError(f"{what} {path} expands to over {MAX_VALUES:,} values (nested aliases?); a {what} lists "
                         "a few hundred at most")
    return data


_SHORT = reprlib.Repr()
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxlevel = 60, 60, 6, 6, 3


def short(value) -> str:
    """A value as an error message may show it: never whole if it is long."""
    return _SHORT.repr(value)
