"""Content ids: stable hashes of normalised text, so re-ingesting adds nothing."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from typing import Any

ID_LENGTH = 32  # hex characters (128 bits)


def normalise_text(text: str) -> str:
    """NFC, Unix newlines, no surrounding whitespace; the form that is stored and hashed."""
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def text_key(text: str) -> bytes:
    """A 16-byte SHA-256 prefix of ``text``: what caches and ingest key a text by (raw bytes, not hex)."""
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


def content_id(kind: str, *parts: Any) -> str:
    """Hash of ``kind`` and ``parts`` (strings, or JSON-able values) as a hex id."""
    try:
        text = "\x1f".join((kind, *parts))
    except TypeError:
        text = "\x1f".join([kind, *(p if isinstance(p, str) else json.dumps(p, sort_keys=True, ensure_ascii=False)
                                    for p in parts)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:ID_LENGTH]


def member_mask(values: Any, members: Any) -> Any:
    """A boolean array: whether each of ``values`` (an array of ids) is among ``members`` (any collection). A set
    lookup per value: numpy's ``isin`` compares object arrays of strings pair by pair (minutes at 100,000 ids)."""
    import numpy as np

    found = members if isinstance(members, set | frozenset | dict) else set(members)
    return np.fromiter((value in found for value in values), dtype=bool, count=len(values))
