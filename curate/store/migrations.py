"""Schema upgrades: ``MIGRATIONS[n]`` turns a schema-``n`` database into schema ``n + 1``.

Every step runs inside the same write transaction as the version bump, so an upgrade
either completes or leaves the database as it was.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from curate.errors import SchemaError


def _add_cluster_and_duplicate_tables(conn: Connection) -> None:
    """Schema 2: cluster runs, cluster assignments and near-duplicate marks."""
    from curate.store.schema import Base

    for name in ("cluster_runs", "cluster_assignments", "near_duplicates"):
        Base.metadata.tables[name].create(conn, checkfirst=True)


def _add_score_tables(conn: Connection) -> None:
    """Schema 3: score runs and their values."""
    from curate.store.schema import Base

    for name in ("score_runs", "scores"):
        Base.metadata.tables[name].create(conn, checkfirst=True)


def _add_annotation_tables(conn: Connection) -> None:
    """Schema 4: the app's assignments, submit tokens, flags and instruction versions."""
    from curate.store.schema import Base

    for name in ("assignments", "submissions", "flags", "instruction_versions"):
        Base.metadata.tables[name].create(conn, checkfirst=True)


def _add_generation_runs(conn: Connection) -> None:
    """Schema 5: generation runs and the prompts each sampled, and the run that sampled each generated completion."""
    from sqlalchemy import text

    from curate.store.schema import Base

    for name in ("generation_runs", "generation_prompts"):
        Base.metadata.tables[name].create(conn, checkfirst=True)
    conn.execute(text("ALTER TABLE completions ADD COLUMN generation_id INTEGER REFERENCES generation_runs(id)"))
    conn.execute(text("CREATE INDEX ix_completions_generation_id ON completions (generation_id)"))


def _add_account_status(conn: Connection) -> None:
    """Schema 6: each account's status (active, disabled, removed) and session generation."""
    from sqlalchemy import text

    conn.execute(text("ALTER TABLE annotators ADD COLUMN status VARCHAR(16) DEFAULT 'active' NOT NULL"))
    conn.execute(text("ALTER TABLE annotators ADD COLUMN session_generation INTEGER DEFAULT 0 NOT NULL"))


def _add_pair_meta(conn: Connection) -> None:
    """Schema 7: each pair's metadata (the source row's other columns; pairs ingested before have none)."""
    from sqlalchemy import text

    conn.execute(text("ALTER TABLE pairs ADD COLUMN meta JSON"))
    conn.execute(text("UPDATE pairs SET meta = '{}'"))


def _transcript_turns(conn: Connection) -> None:
    """Schema 8: a plain-text prompt that is an hh-rlhf style transcript keeps its turns as messages, as ingest now
    reads one (its id, made from the text, stays), so every model step renders its turns."""
    from sqlalchemy import bindparam, select

    from curate.rendering import transcript_turns
    from curate.store.schema import Record

    found = [{"record": record_id, "turns": turns} for record_id, prompt in
             conn.execute(select(Record.id, Record.prompt).where(Record.messages.is_(None)))
             if (turns := transcript_turns(prompt)) is not None]
    if found:
        conn.execute(Record.__table__.update().where(Record.__table__.c.id == bindparam("record"))
                     .values(messages=bindparam("turns")), found)


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _add_cluster_and_duplicate_tables, 2: _add_score_tables,
                                                       3: _add_annotation_tables, 4: _add_generation_runs,
                                                       5: _add_account_status, 6: _add_pair_meta,
                                                       7: _transcript_turns}


def upgrade(conn: Connection, current: int, target: int) -> None:
    """Apply the steps from ``current`` to ``target``."""
    for version in range(current, target):
        step = MIGRATIONS.get(version)
        if step is None:
            raise SchemaError(f"no upgrade from schema {version} to {version + 1}; this database cannot be opened")
        step(conn)
