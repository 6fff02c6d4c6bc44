"""Files published whole: each is written beside its target and renamed into place in one step, so a crash or
a kill leaves the old file or the new one, never a half-written one."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged(path: Path) -> Iterator[Path]:
    """A new temporary sibling of ``path`` to write (its name keeps ``path``'s suffix, which tells writers the
    format); fsynced and renamed onto ``path`` when the block ends, removed if the block raises."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # unique per process and call; created by the writer, so it gets the usual permissions (mkstemp's are 0600)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def publish_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole."""
    with staged(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
