"""The progress contract: long library work iterates through ``progress(items, description, total)``.

The CLI passes a rich progress bar; the library default shows nothing (the library never prints).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
Progress = Callable[[Iterable[T], str, "int | None"], Iterable[T]]


def no_progress(items: Iterable[T], _description: str, _total: int | None) -> Iterable[T]:
    return items
