"""Queries of the app's progress: open rounds' completion, per-annotator counts and the flagged items."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from curate.store.accounts import aware
from curate.store.schema import Annotator, Assignment, Flag, Item, Judgment, Record, Round


@dataclass(frozen=True)
class Judged:
    """One of an annotator's judgments: time taken, pair, choice and item."""

    time_ms: int | None
    pair_id: str | None
    choice: str | None
    item_id: int | None


@dataclass(frozen=True)
class Flagged:
    """A flagged item: its round's number, id and kind, who flagged it, when (UTC), why, and its prompt."""

    round: int
    item_id: int
    kind: str
    by: str
    at: datetime
    reason: str
    prompt: str


def done_per_open_round(conn: Connection) -> list[tuple[int, list[int]]]:
    """For each open round by number: (its number, each non-gold item's count of done assignments)."""
    rounds = []
    for round_id, number in conn.execute(select(Round.id, Round.number).where(Round.status == "open")
                                         .order_by(Round.number)).all():
        done_per_item = (select(Item.id, func.count(Assignment.id).label("done"))
                         .outerjoin(Assignment, (Assignment.item_id == Item.id) & (Assignment.status == "done"))
                         .where(Item.round_id == round_id, Item.arm != "gold").group_by(Item.id).subquery())
        rounds.append((int(number), [int(v) for v in conn.scalars(select(done_per_item.c.done))]))
    return rounds


def open_round_statuses(conn: Connection, *, annotator_id: int) -> dict[str, int]:
    """``annotator_id``'s assignments in the open rounds per status (open, done, skipped, expired)."""
    return {status: int(n) for status, n in conn.execute(
        select(Assignment.status, func.count()).join(Item, Item.id == Assignment.item_id)
        .join(Round, Round.id == Item.round_id)
        .where(Assignment.annotator_id == annotator_id, Round.status == "open")
        .group_by(Assignment.status))}


def open_round_places(conn: Connection) -> tuple[int, int]:
    """(non-gold items of the open rounds, done assignments in the open rounds)."""
    items = conn.scalar(select(func.count()).select_from(Item).join(Round, Round.id == Item.round_id)
                        .where(Round.status == "open", Item.arm != "gold")) or 0
    done = conn.scalar(select(func.count()).select_from(Assignment).join(Item, Item.id == Assignment.item_id)
                       .join(Round, Round.id == Item.round_id)
                       .where(Round.status == "open", Assignment.status == "done")) or 0
    return int(items), int(done)


def unhandled_items(conn: Connection, *, round_number: int, overlap: int) -> int:
    """Non-gold items of round ``round_number`` that fewer than ``overlap`` people judged or passed on."""
    handled = (select(func.count(Assignment.id)).where(Assignment.item_id == Item.id,
                                                       Assignment.status.in_(("done", "skipped")))
               .correlate(Item).scalar_subquery())
    return int(conn.scalar(select(func.count(Item.id)).join(Round, Round.id == Item.round_id).where(
        Round.number == round_number, Item.arm != "gold", handled < overlap)) or 0)


def gold_items(conn: Connection) -> set[int]:
    """The ids of the items made for gold (known-answer) pairs."""
    return {int(i) for i in conn.scalars(select(Item.id).where(Item.arm == "gold"))}


def judged_by(conn: Connection, *, annotator_id: int, source: str) -> list[Judged]:
    """Every judgment of ``source`` by ``annotator_id``."""
    return [Judged(*row) for row in conn.execute(
        select(Judgment.time_ms, Judgment.pair_id, Judgment.choice, Judgment.item_id)
        .where(Judgment.annotator_id == annotator_id, Judgment.source == source))]


def skipped_count(conn: Connection, *, annotator_id: int) -> int:
    """How many items ``annotator_id`` passed on (and has not undone)."""
    return int(conn.scalar(select(func.count()).select_from(Assignment).where(
        Assignment.annotator_id == annotator_id, Assignment.status == "skipped")) or 0)


def flag_count(conn: Connection, *, annotator_id: int) -> int:
    """How many items ``annotator_id`` flagged."""
    return int(conn.scalar(select(func.count()).select_from(Flag).where(Flag.annotator_id == annotator_id)) or 0)


def flagged(conn: Connection) -> list[Flagged]:
    """Every flagged item, newest first."""
    rows = conn.execute(select(Flag.item_id, Flag.reason, Flag.created_at, Annotator.name, Round.number,
                               Item.kind, Record.prompt)
                        .join(Annotator, Annotator.id == Flag.annotator_id).join(Item, Item.id == Flag.item_id)
                        .join(Round, Round.id == Item.round_id).join(Record, Record.id == Item.record_id)
                        .order_by(Flag.created_at.desc(), Flag.id.desc()))
    return [Flagged(r.number, r.item_id, r.kind, r.name, aware(r.created_at), r.reason, r.prompt) for r in rows]
