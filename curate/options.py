"""``key=value`` options of the command line and of strategy specs, parsed one way."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from curate.errors import CurateError


def key_values(parts: Iterable[str], *, error: Callable[[str], str]) -> dict[str, str]:
    """``["key=value", ...]`` as a dict (values stay strings: the receiver types them). A part without ``=`` or
    without a key raises a one-line error, ``error(part)``."""
    options: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise CurateError(error(part))
        options[key] = value
    return options
