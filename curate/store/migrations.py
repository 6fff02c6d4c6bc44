"""Schema upgrades: ``MIGRATIONS[n]`` turns a schema-``n`` database into schema ``n + 1``.

Every step runs inside the same write transaction as the version bump, so an upgrade
either completes or leaves the database as it was. Schema 1 is the first release: no steps yet.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from curate.errors import SchemaError

MIGRATIONS: dict[int, Callable[[Connection], None]] = {}


def upgrade(conn: Connection, current: int, target: int) -> list[int]:
    """Apply the steps from ``current`` to ``target``; return the versions passed through."""
    passed = []
    for version in range(current, target):
        step = MIGRATIONS.get(version)
        if step is None:
            raise SchemaError(f"no upgrade from schema {version} to {version + 1}; this database cannot be opened")
        step(conn)
        passed.append(version + 1)
    return passed
