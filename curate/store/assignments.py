"""Queries of the app's work queue: items handed out, their assignments, submits, skips, flags and undo."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, exists, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from curate.store.accounts import aware
from curate.store.schema import (
    Assignment,
    Completion,
    Flag,
    InstructionVersion,
    Item,
    Judgment,
    Pair,
    Record,
    Round,
    Score,
    Slice,
    Submission,
)
from curate.store.scores import latest_run

ACTIVE = ("open", "done")  # assignments that hold one of an item's ``overlap`` places
QUEUE_LOCK = 7157  # the PostgreSQL advisory lock that makes handing out items one at a time


@dataclass(frozen=True)
class Assigned:
    """One item handed to one annotator: the completions in shown order, the pre-filled choice, the instructions
    shown, the judgment once done, and when it was served (UTC)."""

    id: int
    item_id: int
    annotator_id: int
    status: str  # open | done | skipped | expired
    shown_order: list[str]
    suggestion: str | None
    instruction_version: int | None
    judgment_id: str | None
    served_at: datetime


@dataclass(frozen=True)
class WorkItem:
    """An item of a round with its round's number and status."""

    id: int
    round_id: int
    round_number: int
    round_status: str
    record_id: str
    pair_id: str | None
    completion_id: str | None
    kind: str  # rank | ranking | rewrite
    arm: str


@dataclass(frozen=True)
class Submitted:
    """The earlier submit of a client token."""

    annotator_id: int
    assignment_id: int
    action: str  # judge | skip | flag
    judgment_id: str | None
    undone: bool


_ASSIGNED = (Assignment.id, Assignment.item_id, Assignment.annotator_id, Assignment.status, Assignment.shown_order,
             Assignment.suggestion, Assignment.instruction_version, Assignment.judgment_id, Assignment.served_at)


def lock_queue(conn: Connection) -> None:
    """Hand out one item at a time: PostgreSQL takes an advisory lock to the end of the transaction, as SQLite's
    write lock (``BEGIN IMMEDIATE``) gives for free."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SELECT pg_advisory_xact_lock({QUEUE_LOCK})"))


def expire_leases(conn: Connection, *, before: datetime) -> None:
    """Release the open assignments served before ``before``."""
    conn.execute(update(Assignment).where(Assignment.status == "open", Assignment.served_at < before)
                 .values(status="expired"))


def open_assignment(conn: Connection, *, annotator_id: int) -> Assigned | None:
    """The first open assignment of ``annotator_id`` in an open round, if any."""
    row = conn.execute(select(*_ASSIGNED).join(Item, Item.id == Assignment.item_id)
                       .join(Round, Round.id == Item.round_id)
                       .where(Assignment.annotator_id == annotator_id, Assignment.status == "open",
                              Round.status == "open").order_by(Assignment.id).limit(1)).first()
    return None if row is None else _assigned(row)


def queued_item(conn: Connection, *, annotator_id: int, overlap: int) -> int | None:
    """The first item of the open rounds (in round and item order, gold left out) with fewer than ``overlap``
    active assignments that ``annotator_id`` has not had (an expired lease of theirs aside)."""
    active = (select(func.count()).where(Assignment.item_id == Item.id, Assignment.status.in_(ACTIVE))
              .correlate(Item).scalar_subquery())
    mine = exists().where(Assignment.item_id == Item.id, Assignment.annotator_id == annotator_id,
                          Assignment.status != "expired")
    return conn.scalar(select(Item.id).join(Round, Round.id == Item.round_id)
                       .where(Round.status == "open", Item.arm != "gold", ~mine, active < overlap)
                       .order_by(Round.number, Item.id).limit(1))


def served_count(conn: Connection, *, annotator_id: int) -> int:
    """How many assignments ``annotator_id`` has had (of any status)."""
    return int(conn.scalar(select(func.count()).select_from(Assignment)
                           .where(Assignment.annotator_id == annotator_id)) or 0)


def first_open_round(conn: Connection) -> int | None:
    """The id of the open round with the lowest number, if any."""
    return conn.scalar(select(Round.id).where(Round.status == "open").order_by(Round.number).limit(1))


def gold_candidates(conn: Connection, *, annotator_id: int, source: str) -> list[str]:
    """The pairs with a judgment of ``source`` (gold) that are in no slice, in no round's (non-gold) item and not
    yet handed to ``annotator_id``, by id."""
    done = select(Item.pair_id).join(Assignment, Assignment.item_id == Item.id).where(
        Assignment.annotator_id == annotator_id, Item.pair_id.is_not(None))
    in_rounds = select(Item.pair_id).where(Item.pair_id.is_not(None), Item.arm != "gold")
    return list(conn.execute(
        select(Judgment.pair_id).where(Judgment.source == source, Judgment.pair_id.is_not(None),
                                       Judgment.pair_id.not_in(select(Slice.pair_id)), Judgment.pair_id.not_in(done),
                                       Judgment.pair_id.not_in(in_rounds))
        .distinct().order_by(Judgment.pair_id)).scalars().all())


def find_item(conn: Connection, *, round_id: int, pair_id: str, kind: str) -> int | None:
    """The item of round ``round_id`` that asks ``kind`` of ``pair_id``, if any."""
    found = conn.scalar(select(Item.id).where(Item.round_id == round_id, Item.pair_id == pair_id, Item.kind == kind))
    return None if found is None else int(found)


def add_pair_item(conn: Connection, *, round_id: int, pair_id: str, kind: str, arm: str, reason: str) -> int:
    """A new item of round ``round_id`` on ``pair_id`` (and its record); its id."""
    record_id = conn.scalar(select(Pair.record_id).where(Pair.id == pair_id))
    return int(conn.execute(insert(Item).values(round_id=round_id, record_id=record_id, pair_id=pair_id, kind=kind,
                                                arm=arm, reason=reason)).inserted_primary_key[0])


def work_item(conn: Connection, *, item_id: int) -> WorkItem:
    """Item ``item_id`` with its round's number and status."""
    row = conn.execute(select(Item.id, Item.round_id, Round.number, Round.status, Item.record_id, Item.pair_id,
                              Item.completion_id, Item.kind, Item.arm)
                       .join(Round, Round.id == Item.round_id).where(Item.id == item_id)).one()
    return WorkItem(int(row[0]), int(row[1]), int(row[2]), *row[3:])


def pair_sides(conn: Connection, *, pair_id: str) -> tuple[str, str]:
    """(a, b): the completion ids of ``pair_id`` in the store's order."""
    a_id, b_id = conn.execute(select(Pair.a_id, Pair.b_id).where(Pair.id == pair_id)).one()
    return a_id, b_id


def pair_a(conn: Connection, *, pair_id: str) -> str | None:
    """The completion id of side A of ``pair_id``."""
    return conn.scalar(select(Pair.a_id).where(Pair.id == pair_id))


def other_completions(conn: Connection, *, record_id: str, exclude: Sequence[str], limit: int) -> list[str]:
    """Up to ``limit`` completion ids of ``record_id`` that are not rewrites and not in ``exclude``, by id."""
    return list(conn.scalars(select(Completion.id).where(Completion.record_id == record_id,
                                                         Completion.origin != "rewrite",
                                                         Completion.id.not_in(tuple(exclude)))
                             .order_by(Completion.id).limit(limit)))


def committee_p(conn: Connection, *, pair_id: str) -> float | None:
    """P(A better than B) of ``pair_id`` by the latest committee run, if it scored the pair."""
    run = latest_run(conn, "committee")
    if run is None:
        return None
    return conn.scalar(select(Score.value).where(Score.run_id == run.id, Score.unit_id == pair_id,
                                                 Score.name == "p_mean"))


def serve(conn: Connection, *, item_id: int, annotator_id: int, shown_order: list[str], suggestion: str | None,
          served_at: datetime, instruction_version: int | None) -> Assigned:
    """Hand item ``item_id`` to ``annotator_id``, open, shown in ``shown_order``: a new assignment, or their
    earlier (expired) one of the item, freshly shown."""
    previous = conn.scalar(select(Assignment.id).where(Assignment.item_id == item_id,
                                                       Assignment.annotator_id == annotator_id))
    values = {"status": "open", "shown_order": shown_order, "suggestion": suggestion, "served_at": served_at,
              "judgment_id": None, "done_at": None, "reason": None, "instruction_version": instruction_version}
    if previous is not None:
        conn.execute(update(Assignment).where(Assignment.id == previous).values(**values))
        assignment_id = previous
    else:
        assignment_id = conn.execute(insert(Assignment).values(item_id=item_id, annotator_id=annotator_id, **values)
                                     ).inserted_primary_key[0]
    return _assigned(conn.execute(select(*_ASSIGNED).where(Assignment.id == assignment_id)).one())


def assignment(conn: Connection, *, assignment_id: int) -> Assigned | None:
    """Assignment ``assignment_id``, if it exists."""
    row = conn.execute(select(*_ASSIGNED).where(Assignment.id == assignment_id)).first()
    return None if row is None else _assigned(row)


def record_prompt(conn: Connection, *, record_id: str) -> str:
    """The prompt of ``record_id``."""
    return str(conn.scalar(select(Record.prompt).where(Record.id == record_id)))


def shown_pair(conn: Connection, *, assignment_id: int) -> tuple[str, str | None, str | None, list[str]]:
    """(item kind, pair id, the pair's side A, completions in shown order) of assignment ``assignment_id``."""
    kind, pair_id, a_id, order = conn.execute(
        select(Item.kind, Item.pair_id, Pair.a_id, Assignment.shown_order)
        .join(Assignment, Assignment.item_id == Item.id).outerjoin(Pair, Pair.id == Item.pair_id)
        .where(Assignment.id == assignment_id)).one()
    return kind, pair_id, a_id, order


def lock_assignment(conn: Connection, *, assignment_id: int) -> None:
    """Lock the row of ``assignment_id`` (PostgreSQL) to the end of the transaction, so two submits of one
    assignment run one after the other."""
    conn.execute(select(Assignment.id).where(Assignment.id == assignment_id).with_for_update())


def submission(conn: Connection, *, token: str) -> Submitted | None:
    """The submit made with client token ``token``, if any."""
    row = conn.execute(select(Submission.annotator_id, Submission.assignment_id, Submission.action,
                              Submission.judgment_id, Submission.undone_at).where(Submission.token == token)).first()
    return None if row is None else Submitted(row.annotator_id, row.assignment_id, row.action, row.judgment_id,
                                              row.undone_at is not None)


def add_judgment(conn: Connection, *, source: str, kind: str, record_id: str, pair_id: str | None, item_id: int,
                 annotator_id: int, confidence: int | None, reason: str | None, shown_order: list[str],
                 time_ms: int, instruction_version: str | None, label_schema_version: str, meta: dict[str, Any],
                 created_at: datetime, choice: str | None = None, ranking: list[list[str]] | None = None,
                 completion_id: str | None = None) -> str:
    """Record one judgment of an item (a pair's ``choice``, a ``ranking`` or a rewrite's ``completion_id``);
    its new id."""
    judgment_id = uuid.uuid4().hex
    conn.execute(insert(Judgment).values(
        id=judgment_id, source=source, record_id=record_id, pair_id=pair_id, item_id=item_id,
        annotator_id=annotator_id, confidence=confidence, reason=reason, shown_order=shown_order, time_ms=time_ms,
        instruction_version=instruction_version, label_schema_version=label_schema_version, meta=meta,
        created_at=created_at, kind=kind, choice=choice, ranking=ranking, completion_id=completion_id))
    return judgment_id


def close_assignment(conn: Connection, *, assignment_id: int, status: str, judgment_id: str | None,
                     done_at: datetime) -> bool:
    """Mark open assignment ``assignment_id`` ``status`` (done | skipped); whether it was open."""
    return conn.execute(update(Assignment).where(Assignment.id == assignment_id, Assignment.status == "open").values(
        status=status, judgment_id=judgment_id, done_at=done_at)).rowcount == 1


def add_submission(conn: Connection, *, token: str, annotator_id: int, assignment_id: int, action: str,
                   judgment_id: str | None, created_at: datetime) -> None:
    """Spend client token ``token`` on a submit."""
    conn.execute(insert(Submission).values(token=token, annotator_id=annotator_id, assignment_id=assignment_id,
                                           action=action, judgment_id=judgment_id, created_at=created_at))


def add_flag(conn: Connection, *, item_id: int, annotator_id: int, reason: str | None, created_at: datetime) -> None:
    """Report item ``item_id`` to the leads."""
    conn.execute(insert(Flag).values(item_id=item_id, annotator_id=annotator_id, reason=reason,
                                     created_at=created_at))


def set_reason(conn: Connection, *, assignment_id: int, reason: str | None) -> None:
    """Store why assignment ``assignment_id`` was passed on."""
    conn.execute(update(Assignment).where(Assignment.id == assignment_id).values(reason=reason))


def completion_text(conn: Connection, *, completion_id: str) -> str:
    """The text of completion ``completion_id`` (which must exist)."""
    return str(conn.execute(select(Completion.text).where(Completion.id == completion_id)).one()[0])


def add_rewrite(conn: Connection, *, completion_id: str, record_id: str, text: str, parent_id: str,
                author_id: int, round_id: int, created_at: datetime) -> None:
    """Store a rewrite of ``parent_id`` as completion ``completion_id`` (once: an existing one is kept)."""
    if conn.scalar(select(Completion.id).where(Completion.id == completion_id)) is None:
        conn.execute(insert(Completion).values(
            id=completion_id, record_id=record_id, text=text, origin="rewrite", parent_id=parent_id,
            author_id=author_id, round_id=round_id, created_at=created_at))


def latest_finished(conn: Connection, *, annotator_id: int) -> Assigned | None:
    """The latest done or skipped assignment of ``annotator_id`` in an open round, if any."""
    row = conn.execute(select(*_ASSIGNED).join(Item, Item.id == Assignment.item_id)
                       .join(Round, Round.id == Item.round_id)
                       .where(Assignment.annotator_id == annotator_id, Assignment.status.in_(("done", "skipped")),
                              Round.status == "open")
                       .order_by(Assignment.done_at.desc(), Assignment.id.desc()).limit(1)).first()
    return None if row is None else _assigned(row)


def active_count(conn: Connection, *, item_id: int) -> int:
    """How many of item ``item_id``'s places are taken (open or done assignments)."""
    return int(conn.scalar(select(func.count()).select_from(Assignment).where(
        Assignment.item_id == item_id, Assignment.status.in_(ACTIVE))) or 0)


def judgment_columns(conn: Connection, *, judgment_id: str | None) -> dict[str, Any] | None:
    """Every column of judgment ``judgment_id`` as stored (column name -> value), if it exists."""
    row = conn.execute(select(Judgment).where(Judgment.id == judgment_id)).first()
    return None if row is None else {c.name: getattr(row, c.name) for c in Judgment.__table__.columns}


def reopen(conn: Connection, *, assignment_id: int, now: datetime) -> None:
    """Give assignment ``assignment_id`` back to its annotator, open and freshly served at ``now``; its submits
    are marked undone (their tokens stay spent)."""
    conn.execute(update(Submission).where(Submission.assignment_id == assignment_id, Submission.undone_at.is_(None))
                 .values(judgment_id=None, undone_at=now))
    conn.execute(update(Assignment).where(Assignment.id == assignment_id).values(
        status="open", judgment_id=None, done_at=None, reason=None, served_at=now))


def remove_flags(conn: Connection, *, item_id: int, annotator_id: int) -> None:
    """Take back ``annotator_id``'s flags of item ``item_id``."""
    conn.execute(delete(Flag).where(Flag.item_id == item_id, Flag.annotator_id == annotator_id))


def remove_judgment(conn: Connection, *, judgment_id: str) -> None:
    """Delete judgment ``judgment_id``."""
    conn.execute(delete(Judgment).where(Judgment.id == judgment_id))


def drop_unused_rewrite(conn: Connection, *, completion_id: str | None) -> bool:
    """Delete rewrite ``completion_id`` if nothing refers to it (no pair, judgment, child completion or item);
    whether it was deleted."""
    if completion_id is None:
        return False
    used = conn.scalar(select(Pair.id).where((Pair.a_id == completion_id) | (Pair.b_id == completion_id)).limit(1))
    used = used or conn.scalar(select(Judgment.id).where(Judgment.completion_id == completion_id).limit(1))
    used = used or conn.scalar(select(Completion.id).where(Completion.parent_id == completion_id).limit(1))
    used = used or conn.scalar(select(Item.id).where(Item.completion_id == completion_id).limit(1))
    if used or conn.scalar(select(Completion.origin).where(Completion.id == completion_id)) != "rewrite":
        return False
    conn.execute(delete(Completion).where(Completion.id == completion_id))
    return True


class VersionTaken(Exception):
    """Another process stored the same instructions, or took the next version number, at the same moment;
    the transaction is spoilt: roll it back and read again."""


def instruction_version(conn: Connection, *, sha256: str) -> int | None:
    """The version of the instructions whose text has digest ``sha256``, if stored."""
    version = conn.scalar(select(InstructionVersion.version).where(InstructionVersion.sha256 == sha256))
    return None if version is None else int(version)


def add_instruction_version(conn: Connection, *, sha256: str, body: str) -> int:
    """Store ``body`` (digest ``sha256``) as the next version of the instructions; its number. Raises
    :class:`VersionTaken` when another process stores one at the same moment."""
    version = int(conn.scalar(select(func.max(InstructionVersion.version))) or 0) + 1
    try:
        conn.execute(insert(InstructionVersion).values(version=version, sha256=sha256, text=body))
    except IntegrityError:
        raise VersionTaken(sha256) from None
    return version


def _assigned(row: Any) -> Assigned:
    return Assigned(int(row.id), int(row.item_id), int(row.annotator_id), row.status, row.shown_order,
                    row.suggestion, row.instruction_version, row.judgment_id, aware(row.served_at))
