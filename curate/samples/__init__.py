"""Small bundled sample data for ``curate demo`` (licenses and attribution in NOTICE.md)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SAMPLE_FILES = ("pandalm-sample.jsonl.gz", "ukp-convarg1-sample.jsonl.gz")


def sample_paths() -> list[Path]:
    """Paths of the bundled sample files (inside the installed package)."""
    return [Path(str(files(__name__).joinpath(name))) for name in SAMPLE_FILES]
