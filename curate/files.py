"""Files published whole: each is written beside its target and renamed into place in one step, so a crash or
a kill leaves the old file or the new one, never a half-written one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged(path: Path) -> Iterator[Path]:
    """A temporary sibling of ``path`` to write; renamed onto ``path`` when the block ends, removed if it raises."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")  # the suffix tells writers the format
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def publish_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole."""
    with staged(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
