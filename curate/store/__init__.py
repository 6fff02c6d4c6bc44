"""The project database: models, engines and the only code that reads or writes it."""

from __future__ import annotations

from curate.store.engine import Store, audit, create_store, open_store, redact, resolve_url
from curate.store.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Store", "audit", "create_store", "open_store", "redact", "resolve_url"]
