"""The project database: its tables, engines, migrations and every query (one module per aggregate); the only
code that reads or writes it. Other packages call the query functions with a ``Connection`` from ``Store.read()``
or ``Store.write()`` and get plain values, tuples and arrays back."""

from __future__ import annotations

from sqlalchemy import Connection

from curate.store.engine import (
    Store,
    audit,
    create_store,
    has_password,
    open_store,
    redact,
    resolve_url,
    sqlite_file,
)
from curate.store.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Connection", "Store", "audit", "create_store", "has_password", "open_store", "redact",
           "resolve_url", "sqlite_file"]
