"""Bulk writes that are safe to repeat and to race: rows whose key exists are skipped."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from typing import Any

from sqlalchemy import JSON, Column, Connection, Table, select

CHUNK = 500  # keys per existence query
BATCH = 5000  # rows per executemany


def existing_keys(conn: Connection, column: Column[Any], keys: Iterable[Any]) -> set[Any]:
    """The subset of ``keys`` already present in ``column``."""
    keys = list(keys)
    found: set[Any] = set()
    for start in range(0, len(keys), CHUNK):
        found.update(conn.scalars(select(column).where(column.in_(keys[start:start + CHUNK]))))
    return found


def lookup(conn: Connection, key: Column[Any], value: Column[Any], keys: Sequence[Any]) -> dict[Any, Any]:
    """``{key: value}`` for the rows whose ``key`` is in ``keys``."""
    found: dict[Any, Any] = {}
    for start in range(0, len(keys), CHUNK):
        found.update((k, v) for k, v in conn.execute(select(key, value).where(key.in_(keys[start:start + CHUNK]))))
    return found


def insert_new(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], *,
               key: str = "id") -> list[dict[str, Any]]:
    """Insert the rows whose ``key`` is not in ``table`` yet; return those new rows.

    The existence check keeps the counts honest; ``ON CONFLICT DO NOTHING`` keeps a concurrent
    writer (PostgreSQL) from turning the same content into an error.
    """
    if not rows:
        return []
    present = existing_keys(conn, table.c[key], (r[key] for r in rows))
    new = [r for r in rows if r[key] not in present]
    if not new:
        return new
    bulk_insert(conn, table, new, conflict_key=key)
    return new


def bulk_insert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], *,
                conflict_key: str | None = None) -> None:
    """Insert ``rows`` (dicts with the same keys) through the driver's ``executemany``.

    Values are converted column by column (bulk ingest is dominated by this); columns the rows
    leave out get their default, computed once per call. With ``conflict_key``, rows whose key
    exists are skipped (``ON CONFLICT DO NOTHING``).
    """
    if not rows:
        return
    given = list(rows[0])
    defaults = {c.name: c.default.arg(None) if c.default.is_callable else c.default.arg
                for c in table.columns if c.default is not None and c.name not in given}
    processors = {name: _processor(table.c[name], conn) for name in [*given, *defaults]}
    fixed = [processors[name](value) if processors[name] else value for name, value in defaults.items()]
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    names = [*given, *defaults]
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))})"
    if conflict_key:
        sql += f" ON CONFLICT ({conflict_key}) DO NOTHING"
    for start in range(0, len(rows), BATCH):
        chunk = rows[start:start + BATCH]
        columns: list[Iterable[Any]] = []
        for name in given:  # column by column: map() and zip() keep the per-value work in C
            values = [r[name] for r in chunk]
            process = processors[name]
            columns.append(map(process, values) if process else values)
        columns += [repeat(value, len(chunk)) for value in fixed]
        conn.exec_driver_sql(sql, list(zip(*columns, strict=False)))


def _processor(column: Column[Any], conn: Connection) -> Callable[[Any], Any] | None:
    """The driver-side conversion of one column's values (SQLAlchemy's, but lean for JSON)."""
    if isinstance(column.type, JSON):
        if conn.dialect.name == "postgresql":
            from psycopg.types.json import Json

            return lambda value: None if value is None else Json(value)
        return lambda value: None if value is None else json.dumps(value)
    return column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
