"""Submits from the app: a judgment per assignment, each in one short transaction, idempotent by token.

A submit is refused (``RefusedError``) when the assignment is someone else's, already judged, released
after its lease, or its round is closed. A second submit with the same client token stores nothing and
answers with the first one's judgment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from curate.annotate.users import User
from curate.config import AnnotateSection
from curate.errors import CurateError, RefusedError
from curate.ids import content_id, normalise_text
from curate.labels.vocabulary import CHOICES, Choice, Source
from curate.store import Connection, Store, assignments, audit
from curate.store.assignments import Assigned, WorkItem

# The label schema the app writes; its version is stored with every judgment.
LABEL_SCHEMA = {
    "version": "1",
    "pair": {"choice": [str(c) for c in CHOICES], "confidence": [1, 5]},
    "ranking": "groups of completion ids, best first; completions in one group are tied",
    "rewrite": "a new completion whose parent is the rewritten one",
}
SHOWN_CHOICES = {"A": 0, "B": 1, str(Choice.TIE): None, str(Choice.BOTH_BAD): None}  # the buttons: A, B as shown
MAX_REASON = 2000
MAX_TEXT = 50_000  # characters of a rewrite


@dataclass(frozen=True)
class Saved:
    judgment: str | None
    duplicate: bool  # this token had been submitted before: nothing new was stored
    assignment: int


def submit(store: Store, user: User, *, assignment: int, token: str, choice: str | None = None,
           ranks: list[int] | None = None, text: str | None = None, confidence: int | None = None,
           reason: str | None = None, now: datetime | None = None) -> Saved:
    """Store the judgment of one assignment: ``choice`` (A, B, tie, both_bad as shown) for a pair,
    ``ranks`` (1 = best, equal numbers tie, one per shown completion) for a ranking, ``text`` for a rewrite.
    The judgment names the instructions the item was shown with."""
    now = now or datetime.now(timezone.utc)
    _check_token(token)
    if confidence is not None and not (isinstance(confidence, int) and 1 <= confidence <= 5):
        raise CurateError(f"confidence must be a whole number from 1 to 5, not {confidence!r}")
    reason = (reason or "").strip()[:MAX_REASON] or None
    with store.write() as conn:
        done = _duplicate(conn, user, token, assignment, "judge")
        if done is not None:
            return done
        row, item = _claim(conn, user, assignment)
        values: dict[str, Any] = {}
        if item.kind == "rewrite":
            values.update(_rewrite(conn, user, item, text, now))
        elif item.kind == "rank":
            values.update(_pair_choice(conn, row, item, choice))
        else:
            values.update(_ranking(row, ranks))
        judgment_id = assignments.add_judgment(
            conn, source=Source.APP, record_id=item.record_id, pair_id=item.pair_id, item_id=item.id,
            annotator_id=user.id, confidence=confidence, reason=reason, shown_order=row.shown_order,
            time_ms=int((now - row.served_at).total_seconds() * 1000),
            instruction_version=None if row.instruction_version is None else str(row.instruction_version),
            label_schema_version=LABEL_SCHEMA["version"],
            meta={"suggestion_shown": row.suggestion, "arm": item.arm, "round": item.round_number},
            created_at=now, **values)
        _finish(conn, row, token, "judge", judgment_id, "done", now)
    return Saved(judgment_id, duplicate=False, assignment=assignment)


def skip(store: Store, user: User, *, assignment: int, token: str, reason: str | None = None,
         flag: bool = False, now: datetime | None = None) -> Saved:
    """Pass on an assignment (``flag``: and report the item to the leads; a reason is then required)."""
    now = now or datetime.now(timezone.utc)
    _check_token(token)
    reason = (reason or "").strip()[:MAX_REASON] or None
    if flag and not reason:
        raise CurateError("say why you flag this item")
    action = "flag" if flag else "skip"
    with store.write() as conn:
        done = _duplicate(conn, user, token, assignment, action)
        if done is not None:
            return done
        row, item = _claim(conn, user, assignment)
        if flag:
            assignments.add_flag(conn, item_id=item.id, annotator_id=user.id, reason=reason, created_at=now)
        assignments.set_reason(conn, assignment_id=row.id, reason=reason)
        _finish(conn, row, token, action, None, "skipped", now)
    return Saved(None, duplicate=False, assignment=assignment)


def undo(store: Store, user: User, rule: AnnotateSection, *, assignment: int) -> int:
    """Take back ``user``'s judgment or skip of ``assignment``, which must be their latest in an open round:
    the item is theirs to judge again. A judgment leaves the judgments table and stays, whole, in the audit
    log; its client token stays spent. Undoing twice is refused, so a double click undoes one step."""
    with store.write() as conn:
        assignments.lock_queue(conn)
        row = assignments.latest_finished(conn, annotator_id=user.id)
        if row is None or row.id != assignment:
            raise RefusedError("only your latest judgment in an open round can be undone (and only once)")
        if row.status == "skipped" and assignments.active_count(conn, item_id=row.item_id) >= rule.overlap:
            raise RefusedError("others have taken this item since you skipped it; it cannot be undone")
        judgment = assignments.judgment_columns(conn, judgment_id=row.judgment_id)
        now = datetime.now(timezone.utc)
        assignments.reopen(conn, assignment_id=row.id, now=now)
        assignments.remove_flags(conn, item_id=row.item_id, annotator_id=user.id)
        details: dict[str, Any] = {"assignment": row.id, "status": row.status}
        if judgment is not None:
            details["judgment"] = {name: _plain(value) for name, value in judgment.items()}
            assignments.remove_judgment(conn, judgment_id=judgment["id"])
            if judgment["kind"] == "rewrite":  # the rewrite goes too, unless something else refers to it
                details["rewrite_removed"] = assignments.drop_unused_rewrite(
                    conn, completion_id=judgment["completion_id"])
        audit(conn, "judgment.undo", entity="assignment", entity_id=str(row.id), actor=f"app:{user.name}",
              details=details)
        return row.id


def _check_token(token: str) -> None:
    if not isinstance(token, str) or not 8 <= len(token) <= 64:
        raise CurateError("a submit needs its client token (8 to 64 characters)")


def _duplicate(conn: Connection, user: User, token: str, assignment: int, action: str) -> Saved | None:
    """The earlier submit of ``token``, if any. The assignment's row is locked first (PostgreSQL), so two
    submits of one assignment run one after the other and the second sees the first's token."""
    assignments.lock_assignment(conn, assignment_id=assignment)
    seen = assignments.submission(conn, token=token)
    if seen is None:
        return None
    if seen.annotator_id != user.id or seen.assignment_id != assignment or seen.action != action:
        raise RefusedError("this client token was used for another submit")
    if seen.undone:
        raise RefusedError("this submit was undone; judge the item again")
    return Saved(seen.judgment_id, duplicate=True, assignment=assignment)


def _claim(conn: Connection, user: User, assignment: int) -> tuple[Assigned, WorkItem]:
    row = assignments.assignment(conn, assignment_id=assignment)
    if row is None or row.annotator_id != user.id:
        raise RefusedError("this item is not assigned to you")
    if row.status == "expired":
        raise RefusedError("this item was released after its time limit: take the next item")
    if row.status != "open":
        raise RefusedError(f"this item is already {'judged' if row.status == 'done' else 'skipped'}")
    item = assignments.work_item(conn, item_id=row.item_id)
    if item.round_status != "open":
        raise RefusedError("this item's round is closed")
    return row, item


def _finish(conn: Connection, row: Assigned, token: str, action: str, judgment_id: str | None, status: str,
            now: datetime) -> None:
    if not assignments.close_assignment(conn, assignment_id=row.id, status=status, judgment_id=judgment_id,
                                        done_at=now):  # the row is locked by _duplicate: a guard, not a path
        raise RefusedError("this item changed while you submitted; take the next item")
    assignments.add_submission(conn, token=token, annotator_id=row.annotator_id, assignment_id=row.id,
                               action=action, judgment_id=judgment_id, created_at=now)


def _pair_choice(conn: Connection, row: Assigned, item: WorkItem, choice: str | None) -> dict[str, Any]:
    if choice not in SHOWN_CHOICES:
        raise CurateError(f"choose A, B, tie or both_bad, not {choice!r}")
    position = SHOWN_CHOICES[choice]
    if position is None:
        return {"kind": "pair", "choice": choice}
    a_id = assignments.pair_a(conn, pair_id=item.pair_id)
    return {"kind": "pair", "choice": Choice.A if row.shown_order[position] == a_id else Choice.B}


def _ranking(row: Assigned, ranks: list[int] | None) -> dict[str, Any]:
    shown = row.shown_order
    if (not isinstance(ranks, list) or len(ranks) != len(shown)
            or not all(isinstance(r, int) and not isinstance(r, bool) and 1 <= r <= len(shown) for r in ranks)):
        raise CurateError(f"give each of the {len(shown)} completions a rank from 1 (best) to {len(shown)}")
    groups = [[c for c, r in zip(shown, ranks, strict=False) if r == level] for level in sorted(set(ranks))]
    return {"kind": "ranking", "ranking": groups}


def _rewrite(conn: Connection, user: User, item: WorkItem, text: str | None, now: datetime) -> dict[str, Any]:
    body = normalise_text(text or "")
    if not body:
        raise CurateError("the rewrite is empty")
    if len(body) > MAX_TEXT:
        raise CurateError(f"the rewrite is longer than {MAX_TEXT:,} characters")
    if body == assignments.completion_text(conn, completion_id=item.completion_id):
        raise CurateError("the rewrite is the same as the original: edit it, or skip the item")
    new_id = content_id("completion", item.record_id, body)
    assignments.add_rewrite(conn, completion_id=new_id, record_id=item.record_id, text=body,
                            parent_id=item.completion_id, author_id=user.id, round_id=item.round_id, created_at=now)
    return {"kind": "rewrite", "completion_id": new_id}


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
