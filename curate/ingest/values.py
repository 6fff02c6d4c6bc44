"""Checks on single values of a row: text, chat messages and label values. Each raises RowProblem."""

from __future__ import annotations

import math
from typing import Any

ROLES = ("system", "user", "assistant", "tool")


class RowProblem(Exception):
    """Why one row cannot be ingested (the pipeline adds ``file:line:``)."""


def cell(row: dict[str, Any], key: str) -> Any:
    """``row[key]``; a missing field is a problem."""
    if key not in row:
        raise RowProblem(f"missing field '{key}'")
    return row[key]


def text_value(row: dict[str, Any], key: str, *, allow_empty: bool = False) -> str:
    """The text in ``row[key]``; missing, null, NaN, non-text or empty text is a problem.

    With ``allow_empty`` (optional parts such as an instruction's input) empty text and null are "".
    """
    value = cell(row, key)
    if value is None:
        if allow_empty:
            return ""
        raise RowProblem(f"field '{key}' is null")
    if isinstance(value, float) and math.isnan(value):
        raise RowProblem(f"field '{key}' is NaN, expected text")
    if not isinstance(value, str):
        raise RowProblem(f"field '{key}' is {_kind(value)}, expected text")
    if not allow_empty and not value.strip():
        raise RowProblem(f"field '{key}' is empty")
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
        if not content.strip():
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
    if type(value) is int or (type(value) is str and value.strip()):
        return str(value)
    raise RowProblem(f"field '{key}' is {'empty' if value == '' else _kind(value)}, expected a row id")


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
