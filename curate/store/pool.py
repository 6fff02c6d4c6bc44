"""Queries of the pool: records, completions and pairs with their texts and metadata, ingest batches, clusters
and near-duplicate marks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.orm import aliased

from curate.rendering import Content, Conversation
from curate.store.bulk import bulk_insert, insert_new, lookup
from curate.store.schema import (
    Annotator,
    ClusterAssignment,
    ClusterRun,
    Completion,
    IngestBatch,
    Judgment,
    NearDuplicate,
    Pair,
    Record,
)

PoolPair = tuple[str, str, str, str]  # (pair id, record id, completion A id, completion B id)
Texts = dict[str, tuple[str, list[Any] | None]]  # id -> (plain text, chat messages or None)
CHUNK = 500  # ids per query


# --- records, completions and pairs ---------------------------------------------------------------------------

def completion_texts(conn: Connection, *, ids: Iterable[str]) -> Texts:
    """Completion id -> (text, messages) of the completions ``ids``."""
    return {i: (t, m) for i, t, m in _chunked(conn, select(Completion.id, Completion.text, Completion.messages),
                                              Completion.id, ids)}


def pair_texts(conn: Connection, *, pair_id: str) -> tuple[str, str, str]:
    """The prompt of ``pair_id`` and the texts of its completions A and B."""
    row = conn.execute(select(Record.prompt, Pair.a_id, Pair.b_id).join(Record, Record.id == Pair.record_id)
                       .where(Pair.id == pair_id)).one()
    texts = completion_texts(conn, ids={row.a_id, row.b_id})
    return row.prompt, texts[row.a_id][0], texts[row.b_id][0]


def prompts(conn: Connection, *, ids: Iterable[str]) -> Texts:
    """Record id -> (prompt, messages) of the records ``ids``."""
    return {i: (t, m) for i, t, m in _chunked(conn, select(Record.id, Record.prompt, Record.messages), Record.id, ids)}


def _chunked(conn: Connection, query: Any, column: Any, ids: Iterable[str]) -> list[Any]:
    ordered = sorted(set(ids))
    return [row for i in range(0, len(ordered), CHUNK) for row in conn.execute(query.where(
        column.in_(ordered[i:i + CHUNK])))]

def has_pairs(conn: Connection) -> bool:
    """Whether the project holds any pair."""
    return bool(conn.scalar(select(Pair.id).limit(1)))


def unit_parts(conn: Connection, *, field: str) -> tuple[list[str], list[tuple[str, ...]]]:
    """The ids of every unit of ``field`` in id order and the texts each is made of: a prompt's text
    (``prompt``), a completion's (``completion``), or a pair's prompt and completions A and B (``pair``)."""
    if field == "prompt":
        rows = conn.execute(select(Record.id, Record.prompt).order_by(Record.id)).all()
    elif field == "completion":
        rows = conn.execute(select(Completion.id, Completion.text).order_by(Completion.id)).all()
    elif field == "pair":
        a, b = aliased(Completion), aliased(Completion)
        rows = conn.execute(select(Pair.id, Record.prompt, a.text, b.text)
                            .join(Record, Record.id == Pair.record_id)
                            .join(a, a.id == Pair.a_id).join(b, b.id == Pair.b_id).order_by(Pair.id)).all()
    else:
        raise ValueError(f"unknown field {field!r}")
    return [r[0] for r in rows], [tuple(r[1:]) for r in rows]


def completion_rows(conn: Connection) -> list[tuple[str, Conversation]]:
    """(completion id, the completion in its prompt's context) of every completion, by id."""
    rows = conn.execute(select(Completion.id, Record.prompt, Record.messages, Completion.text, Completion.messages)
                        .join(Record, Record.id == Completion.record_id).order_by(Completion.id))
    return [(cid, Conversation(Content(prompt, prompt_messages), Content(text, messages)))
            for cid, prompt, prompt_messages, text, messages in rows]


def pair_contents(conn: Connection) -> tuple[list[str], list[tuple[Content, Content, Content]]]:
    """The ids of every pair in id order, and each pair's prompt, completion A and completion B with their messages."""
    a, b = aliased(Completion), aliased(Completion)
    rows = conn.execute(select(Pair.id, Record.prompt, Record.messages, a.text, a.messages, b.text, b.messages)
                        .join(Record, Record.id == Pair.record_id)
                        .join(a, a.id == Pair.a_id).join(b, b.id == Pair.b_id).order_by(Pair.id)).all()
    return [r[0] for r in rows], [(Content(r[1], r[2]), Content(r[3], r[4]), Content(r[5], r[6])) for r in rows]


def pairs(conn: Connection) -> list[PoolPair]:
    """(pair id, record id, completion A id, completion B id) of every pair, by id."""
    return [tuple(r) for r in conn.execute(select(Pair.id, Pair.record_id, Pair.a_id, Pair.b_id).order_by(Pair.id))]


def records(conn: Connection) -> list[tuple[str, str, list[Any] | None]]:
    """(record id, prompt, chat messages or None) of every record, by id."""
    return [tuple(r) for r in conn.execute(select(Record.id, Record.prompt, Record.messages).order_by(Record.id))]


def record_meta(conn: Connection) -> dict[str, dict[str, Any]]:
    """The metadata of every record that has some: record id -> its metadata."""
    return {rid: m for rid, m in conn.execute(select(Record.id, Record.meta)) if m}


def pair_meta(conn: Connection) -> dict[str, dict[str, Any]]:
    """The metadata of every pair, its record's under its own (a pair's own value wins): pair id -> metadata;
    pairs with none are left out."""
    records = record_meta(conn)
    out = {}
    for pair_id, record_id, meta in conn.execute(select(Pair.id, Pair.record_id, Pair.meta)):
        merged = {**records.get(record_id, {}), **(meta or {})}
        if merged:
            out[pair_id] = merged
    return out


def completions_per_record(conn: Connection) -> dict[str, int]:
    """How many completions each record has (records with none are left out)."""
    return dict(conn.execute(select(Completion.record_id, func.count()).group_by(Completion.record_id)).all())


def judged_pairs(conn: Connection, *, sources: Iterable[str]) -> set[str]:
    """Pairs with a judgment of one of ``sources``."""
    return {r[0] for r in conn.execute(select(Judgment.pair_id).where(Judgment.source.in_(list(sources))))}


def judgments_per_unit(conn: Connection, *, field: str) -> dict[str, int]:
    """How many judgments (of any kind and source) each unit of ``field`` (pair, prompt or completion) has."""
    column = {"pair": Judgment.pair_id, "prompt": Judgment.record_id, "completion": Judgment.completion_id}[field]
    return {uid: n for uid, n in conn.execute(select(column, func.count()).group_by(column)) if uid}


def add_records(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Add the records (column dicts) whose id is new; how many were new."""
    return len(insert_new(conn, Record.__table__, rows))


def add_completions(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Add the completions (column dicts) whose id is new; how many were new."""
    return len(insert_new(conn, Completion.__table__, rows))


def add_pairs(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Add the pairs (column dicts) whose id is new; how many were new."""
    return len(insert_new(conn, Pair.__table__, rows))


# --- ingest batches -------------------------------------------------------------------------------------------

def add_batch(conn: Connection, *, path: str, sha256: str, file_format: str, layout: str) -> int:
    """Start the ingest batch of one file (its counts come with ``set_batch_counts``); its id."""
    return int(conn.execute(insert(IngestBatch).values(path=path, sha256=sha256, file_format=file_format,
                                                       layout=layout, counts={})).inserted_primary_key[0])


def set_batch_counts(conn: Connection, *, batch_id: int, counts: dict[str, Any]) -> None:
    """Record what batch ``batch_id`` added."""
    conn.execute(update(IngestBatch).where(IngestBatch.id == batch_id).values(counts=counts))


def drop_batch(conn: Connection, *, batch_id: int) -> None:
    """Remove batch ``batch_id`` (a file that added nothing)."""
    conn.execute(delete(IngestBatch).where(IngestBatch.id == batch_id))


def add_imported_annotators(conn: Connection, *, names: Sequence[str]) -> dict[str, int]:
    """Create the imported labellers ``names`` that do not exist yet; name -> id of each."""
    insert_new(conn, Annotator.__table__, [{"name": n, "kind": "imported"} for n in names], key="name")
    return lookup(conn, Annotator.__table__.c.name, Annotator.__table__.c.id, names)


def add_judgments(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Add the judgments (column dicts) whose id is new; the source of each new one."""
    return [j["source"] for j in insert_new(conn, Judgment.__table__, rows)]


# --- clusters -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClusterRunInfo:
    """One clustering: its id, field (prompt | completion | pair), embedding model fingerprint, method
    (kmeans | hdbscan), k, configuration and when it ran."""

    id: int
    field: str
    model: str
    method: str
    k: int
    config: dict[str, Any]
    created_at: datetime | None


def add_cluster_run(conn: Connection, *, field: str, model: str, method: str, k: int, config: dict[str, Any],
                    clusters: Sequence[tuple[str, int]]) -> int:
    """Store one clustering and the cluster of each unit ((unit id, cluster) rows); its id."""
    run_id = int(conn.execute(ClusterRun.__table__.insert().values(
        field=field, model=model, method=method, k=k, config=config)).inserted_primary_key[0])
    bulk_insert(conn, ClusterAssignment.__table__, [{"run_id": run_id, "unit_id": uid, "cluster": c}
                                                    for uid, c in clusters])
    return run_id


def latest_cluster_run(conn: Connection, *, field: str | None = None) -> ClusterRunInfo | None:
    """The newest cluster run (of ``field`` only, if given), or None."""
    query = select(ClusterRun.__table__).order_by(ClusterRun.id.desc()).limit(1)
    if field:
        query = query.where(ClusterRun.field == field)
    row = conn.execute(query).first()
    if row is None:
        return None
    return ClusterRunInfo(id=row.id, field=row.field, model=row.model, method=row.method, k=row.k,
                          config=row.config or {}, created_at=row.created_at)


def cluster_labels(conn: Connection, *, run_id: int) -> dict[str, int]:
    """The cluster of every unit run ``run_id`` clustered: unit id -> cluster (-1: HDBSCAN noise)."""
    return {uid: c for uid, c in conn.execute(select(ClusterAssignment.unit_id, ClusterAssignment.cluster)
                                              .where(ClusterAssignment.run_id == run_id))}


# --- near-duplicates ------------------------------------------------------------------------------------------

def replace_near_duplicates(conn: Connection, *, field: str, marks: Sequence[tuple[str, str, float]],
                            threshold: float, model: str) -> None:
    """Replace the near-duplicate marks of ``field`` by ``marks``: (unit id, its representative's id, their
    similarity) each, found at ``threshold`` with the embedding model fingerprinted ``model``."""
    conn.execute(delete(NearDuplicate).where(NearDuplicate.field == field))
    bulk_insert(conn, NearDuplicate.__table__, [
        {"field": field, "unit_id": uid, "representative_id": representative, "similarity": similarity,
         "threshold": threshold, "model": model} for uid, representative, similarity in marks])


def near_duplicates(conn: Connection, *, field: str) -> list[tuple[str, str]]:
    """(unit id, representative id) of every unit of ``field`` marked as a near-duplicate."""
    return [tuple(r) for r in conn.execute(select(NearDuplicate.unit_id, NearDuplicate.representative_id)
                                           .where(NearDuplicate.field == field))]


# --- pair metadata as text (select --where, [select] test_split, curate status) -------------------------------

def meta_text(value: Any) -> str | None:
    """The text a metadata value compares as: text as it is, anything else as JSON (3 -> "3", true -> "true");
    None for a missing (null) value."""
    import json

    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def meta_values(conn: Connection, *, most: int = 1000) -> dict[str, dict[str, int] | None]:
    """How many pairs have each value (as ``meta_text``) of each metadata key, a pair's own over its record's:
    key -> value -> pairs, keys in name order; None for a key with over ``most`` distinct values (ids)."""
    counts: dict[str, dict[str, int] | None] = {}
    for meta in pair_meta(conn).values():
        for key, value in meta.items():
            text = meta_text(value)
            found = counts.setdefault(key, {})
            if text is None or found is None:
                continue
            found[text] = found.get(text, 0) + 1
            if len(found) > most:
                counts[key] = None
    return dict(sorted(counts.items()))
