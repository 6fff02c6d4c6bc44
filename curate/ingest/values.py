"""Checks on single values of a row: text, chat messages and label values. Each raises RowProblem.

Every text a layout stores passes ``checked_text`` (valid Unicode that both databases can hold: no lone
surrogates, no NUL) and ``blank`` is the one meaning of "empty" (both rules live in ``curate.text``).
"""

from __future__ import annotations

import math
from typing import Any

from curate.text import blank, unstorable

ROLES = ("system", "user", "assistant", "tool")


class RowProblem(Exception):
    """Why one row cannot be ingested (the pipeline adds ``file:line:``)."""


def cell(row: dict[str, Any], key: str) -> Any:
    """``row[key]``; a missing field is a problem."""
    if key not in row:
        raise RowProblem(f"missing field '{key}'")
    return row[key]


def checked_text(text: str, what: str) -> str:
    """``text`` if both databases can store it; a NUL or a lone surrogate is a problem about ``what``."""
    why = unstorable(text)
    if why is None:
        return text
    raise RowProblem(f"{what} holds {why}")


def meta_value(value: Any, what: str) -> Any:
    """``value`` if it can be stored as JSON on both databases (checked text, finite numbers, str keys)."""
    if isinstance(value, str):
        return checked_text(value, what)
    if isinstance(value, float) and not math.isfinite(value):
        raise RowProblem(f"{what} is {value}, not a JSON number")
    if isinstance(value, list):
        return [meta_value(item, what) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise RowProblem(f"{what} has an object key that is not text")
        return {checked_text(k, what): meta_value(v, what) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float)):
        return value
    raise RowProblem(f"{what} is {_kind(value)}, not a JSON value")


NOT_KEPT = object()  # ``kept_value``: the value cannot be kept


def kept_value(value: Any, what: str) -> tuple[Any, str | None]:
    """A column no layout reads, as JSON both databases store, and a note where it is not kept exactly: dates
    and times become ISO text, decimals text, NaN and infinities null (noted); bytes and other objects are not
    kept (``NOT_KEPT``, noted). Text must be text here too: a NUL or a lone surrogate is a problem about ``what``
    (the one rule for text in every field)."""
    import datetime
    import decimal

    if isinstance(value, str):
        return checked_text(value, what), None
    if isinstance(value, float) and not math.isfinite(value):
        return None, f"{value} kept as null"
    if value is None or isinstance(value, (bool, int, float)):
        return value, None
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat(), None
    if isinstance(value, decimal.Decimal):
        return str(value), None
    if isinstance(value, (list, tuple, dict)):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        out, notes = {}, set()
        for key, item in items:
            if isinstance(value, dict) and not isinstance(key, str):
                return NOT_KEPT, "has an object key that is not text: not kept"
            kept, note = kept_value(item, what)
            if kept is NOT_KEPT:
                return NOT_KEPT, note
            out[checked_text(key, what) if isinstance(key, str) else key] = kept
            notes.update([note] if note else [])
        kept = out if isinstance(value, dict) else list(out.values())
        return kept, (sorted(notes)[0] if notes else None)
    return NOT_KEPT, f"is {_kind(value)}: not kept"


def text_value(row: dict[str, Any], key: str, *, allow_empty: bool = False) -> str:
    """The text in ``row[key]``; missing, null, NaN, non-text, unstorable or blank text is a problem.

    With ``allow_empty`` (optional parts such as an instruction's input) blank text is kept and null is "".
    """
    return text_of(cell(row, key), f"field '{key}'", allow_empty=allow_empty)


def text_of(value: Any, what: str, *, allow_empty: bool = False) -> str:
    """``value`` if it is text (see ``text_value``); ``what`` names it in the problem."""
    if value is None:
        if allow_empty:
            return ""
        raise RowProblem(f"{what} is null")
    if isinstance(value, float) and math.isnan(value):
        raise RowProblem(f"{what} is NaN, expected text")
    if not isinstance(value, str):
        raise RowProblem(f"{what} is {_kind(value)}, expected text")
    checked_text(value, what)
    if not allow_empty and blank(value):
        raise RowProblem(f"{what} is empty")
    return value


def messages_value(row: dict[str, Any], key: str) -> list[dict[str, str]]:
    """A list of chat messages ``{"role", "content"}`` in ``row[key]``."""
    value = cell(row, key)
    if not isinstance(value, list) or not value:
        raise RowProblem(f"wrong list shape: field '{key}' must be a non-empty list of messages")
    messages = []
    for number, message in enumerate(value, start=1):
        if not isinstance(message, dict) or not {"role", "content"} <= message.keys():
            raise RowProblem(f"wrong list shape: field '{key}' message {number} needs 'role' and 'content'")
        role, content = message["role"], message["content"]
        if role not in ROLES:
            raise RowProblem(f"field '{key}' message {number} has unknown role {role!r} "
                             f"(known: {', '.join(ROLES)})")
        if not isinstance(content, str):
            raise RowProblem(f"field '{key}' message {number} content is {_kind(content)}, expected text")
        checked_text(content, f"field '{key}' message {number} content")
        if blank(content):
            raise RowProblem(f"field '{key}' message {number} content is empty")
        messages.append({"role": role, "content": content})
    return messages


def is_messages(value: Any) -> bool:
    return isinstance(value, list)


def render_messages(messages: list[dict[str, str]]) -> str:
    """Chat messages as one readable text (the form stored next to the messages)."""
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)


def score_value(value: Any, what: str) -> float | None:
    """A score: a finite number, or the text of one (CSV cells are text); null or blank text is no score."""
    if value is None or (isinstance(value, str) and blank(value)):
        return None
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise RowProblem(f"{what} is {value!r}, expected a number") from None
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise RowProblem(f"{what} is {_kind(value)}, expected a number")
    if not math.isfinite(number):
        raise RowProblem(f"{what} is {value}, expected a finite number")
    return float(number)


def label_key(value: Any, key: str) -> str:
    """The text form of a label cell, matched against label-value maps (``1``, ``a2``, ``true``)."""
    kind = type(value)
    if kind is str or kind is int:
        return str(value).strip().lower()
    if value is None:
        raise RowProblem(f"field '{key}' is null")
    if kind is bool:
        return "true" if value else "false"
    if kind is float:
        if math.isnan(value):
            raise RowProblem(f"field '{key}' is NaN, expected a label")
        return str(int(value)) if value.is_integer() else str(value)  # 1.0 from pandas/Parquet reads as 1
    raise RowProblem(f"field '{key}' is {_kind(value)}, expected a label")


def source_id(row: dict[str, Any], key: str) -> str:
    """A row id named by the source, kept exactly (``A`` and ``a`` stay two ids)."""
    value = cell(row, key)
    if type(value) is int or (type(value) is str and not blank(value)):
        return checked_text(str(value), f"field '{key}'")
    raise RowProblem(f"field '{key}' is {'empty' if isinstance(value, str) else _kind(value)}, expected a row id")


def map_label(value: Any, key: str, values: dict[str, str]) -> str:
    """Look up a label cell in ``values``; an unknown value is a problem that lists the known ones."""
    found = values.get(label_key(value, key))
    if found is None:
        known = ", ".join(sorted(values))
        raise RowProblem(f"unknown label value {value!r} in field '{key}' (known: {known}; map others with "
                         "--label-values)")
    return found


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object",
             type(None): "null"}
    return names.get(type(value), type(value).__name__)
