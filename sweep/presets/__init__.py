

from itertools import takewhile
from pathlib import Path

PRESETS_DIR = Path(__file__).parent


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def preset_description(name: str) -> str:
    """The preset file's leading comment, its description."""
    lines = (PRESETS_DIR / f"{name}.yaml").read_text().splitlines()
    return " ".join(line.lstrip("# ").strip() for line in takewhile(lambda line: line.startswith("#"), lines))
