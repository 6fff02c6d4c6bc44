"""The work queue: which item of the open rounds an annotator gets next, and what they are shown.

Each call is one short write transaction. An item is handed to at most ``overlap`` people (open or
done), never twice to one person; gold (known-answer) pairs are mixed in at ``gold_rate``; an item not
submitted within the lease goes back to the queue.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, exists, func, insert, select, text, update

from curate.annotate.users import User
from curate.config import AnnotateSection
from curate.labels.vocabulary import Source
from curate.select.routing import MAX_RANKED
from curate.store import Store
from curate.store.schema import Assignment, Completion, Item, Judgment, Pair, Record, Round, Score, ScoreRun, Slice

ACTIVE = ("open", "done")
QUEUE_LOCK = 7157  # the PostgreSQL advisory lock that makes handing out items one at a time


@dataclass(frozen=True)
class Shown:
    """What one annotator sees of one item (model names and ids hidden)."""

    assignment: int
    token: str  # the client token of this showing: submitting twice with it stores one judgment
    view: str  # pair | rank | rewrite
    round: int
    prompt: str
    completions: list[str]  # in shown order
    suggestion: str | None = None  # pair view: the pre-filled choice (A/B), when prefill is on

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def next_item(store: Store, user: User, rule: AnnotateSection, *, instruction_version: int | None = None,
              now: datetime | None = None) -> Shown | None:
    """The item ``user`` should do now: their open one, else a new one from the queue (or None).
    ``instruction_version``: the instructions the annotator sees, recorded with a newly shown item."""
    now = now or datetime.now(timezone.utc)
    with store.write() as conn:
        if store.dialect == "postgresql":  # one queue at a time, as SQLite's write lock gives for free
            conn.execute(text(f"SELECT pg_advisory_xact_lock({QUEUE_LOCK})"))
        _expire(conn, now - timedelta(minutes=rule.lease_minutes))
        row = conn.execute(select(Assignment).join(Item, Item.id == Assignment.item_id)
                           .join(Round, Round.id == Item.round_id)
                           .where(Assignment.annotator_id == user.id, Assignment.status == "open",
                                  Round.status == "open").order_by(Assignment.id).limit(1)).first()
        if row is not None:
            return _show(conn, row)
        item_id = _gold_item(conn, user, rule) or _queued_item(conn, user, rule)
        if item_id is None:
            return None
        return _show(conn, _assign(conn, item_id, user, rule, now, instruction_version))


def _expire(conn: Connection, before: datetime) -> None:
    conn.execute(update(Assignment).where(Assignment.status == "open", Assignment.served_at < before)
                 .values(status="expired"))


def _queued_item(conn: Connection, user: User, rule: AnnotateSection) -> int | None:
    """The first item of the open rounds (in round and item order) with a free place that ``user`` has not
    had. Everyone takes the first free place, so items are completed before new ones are started."""
    active = (select(func.count()).where(Assignment.item_id == Item.id, Assignment.status.in_(ACTIVE))
              .correlate(Item).scalar_subquery())
    mine = exists().where(Assignment.item_id == Item.id, Assignment.annotator_id == user.id,
                          Assignment.status != "expired")
    return conn.scalar(select(Item.id).join(Round, Round.id == Item.round_id)
                       .where(Round.status == "open", Item.arm != "gold", ~mine, active < rule.overlap)
                       .order_by(Round.number, Item.id).limit(1))


def _gold_item(conn: Connection, user: User, rule: AnnotateSection) -> int | None:
    """At rate ``gold_rate`` (a draw seeded by user and position), a gold pair ``user`` has not judged."""
    if rule.gold_rate <= 0:
        return None
    served = conn.scalar(select(func.count()).select_from(Assignment).where(Assignment.annotator_id == user.id)) or 0
    if _draw(f"gold:{user.name}:{served}") >= rule.gold_rate:
        return None
    round_id = conn.scalar(select(Round.id).where(Round.status == "open").order_by(Round.number).limit(1))
    if round_id is None:
        return None
    done = select(Item.pair_id).join(Assignment, Assignment.item_id == Item.id).where(
        Assignment.annotator_id == user.id, Item.pair_id.is_not(None))
    in_rounds = select(Item.pair_id).where(Item.pair_id.is_not(None), Item.arm != "gold")
    candidates = conn.execute(
        select(Judgment.pair_id).where(Judgment.source == Source.GOLD, Judgment.pair_id.is_not(None),
                                       Judgment.pair_id.not_in(select(Slice.pair_id)), Judgment.pair_id.not_in(done),
                                       Judgment.pair_id.not_in(in_rounds))
        .distinct().order_by(Judgment.pair_id)).scalars().all()
    if not candidates:
        return None
    pair_id = candidates[int(_draw(f"gold-pick:{user.name}:{served}") * len(candidates))]
    found = conn.scalar(select(Item.id).where(Item.round_id == round_id, Item.pair_id == pair_id,
                                              Item.kind == "rank"))
    if found is not None:
        return int(found)
    record_id = conn.scalar(select(Pair.record_id).where(Pair.id == pair_id))
    return int(conn.execute(insert(Item).values(
        round_id=round_id, record_id=record_id, pair_id=pair_id, kind="rank", arm="gold",
        reason="gold: a known answer, to measure annotators")).inserted_primary_key[0])


def _assign(conn: Connection, item_id: int, user: User, rule: AnnotateSection, now: datetime,
            instruction_version: int | None) -> Any:
    item = conn.execute(select(Item).where(Item.id == item_id)).one()
    order = _completion_ids(conn, item)
    random.Random(f"order:{item.id}:{user.name}").shuffle(order)
    # never on gold items: the committee learnt their answers, so it would give them away
    suggestion = _suggestion(conn, item, order) if rule.prefill and item.kind == "rank" and item.arm != "gold" \
        else None
    previous = conn.execute(select(Assignment).where(Assignment.item_id == item_id,
                                                     Assignment.annotator_id == user.id)).first()
    values = {"status": "open", "shown_order": order, "suggestion": suggestion, "served_at": now,
              "judgment_id": None, "done_at": None, "reason": None, "instruction_version": instruction_version}
    if previous is not None:  # an expired lease of this person's: the same item again, freshly shown
        conn.execute(update(Assignment).where(Assignment.id == previous.id).values(**values))
        assignment_id = previous.id
    else:
        assignment_id = conn.execute(insert(Assignment).values(item_id=item_id, annotator_id=user.id, **values)
                                     ).inserted_primary_key[0]
    return conn.execute(select(Assignment).where(Assignment.id == assignment_id)).one()


def _completion_ids(conn: Connection, item: Any) -> list[str]:
    if item.kind == "rewrite":
        return [item.completion_id]
    pair = conn.execute(select(Pair.a_id, Pair.b_id).where(Pair.id == item.pair_id)).one()
    if item.kind == "rank":
        return [pair.a_id, pair.b_id]
    others = conn.scalars(select(Completion.id).where(Completion.record_id == item.record_id,
                                                      Completion.origin != "rewrite",
                                                      Completion.id.not_in((pair.a_id, pair.b_id)))
                          .order_by(Completion.id).limit(MAX_RANKED - 2))
    # a ranking: the selected pair and the prompt's other (not rewritten) completions
    return [pair.a_id, pair.b_id, *others]


def _suggestion(conn: Connection, item: Any, order: list[str]) -> str | None:
    """The committee's choice for a pair, in shown terms (A = left), from the latest committee run."""
    run_id = conn.scalar(select(ScoreRun.id).where(ScoreRun.kind == "committee").order_by(ScoreRun.id.desc()))
    if run_id is None:
        return None
    p = conn.scalar(select(Score.value).where(Score.run_id == run_id, Score.unit_id == item.pair_id,
                                              Score.name == "p_mean"))
    if p is None:
        return None
    a_id = conn.scalar(select(Pair.a_id).where(Pair.id == item.pair_id))
    better = a_id if p >= 0.5 else next(c for c in order if c != a_id)
    return "A" if order[0] == better else "B"


def _show(conn: Connection, assignment: Any) -> Shown:
    item = conn.execute(select(Item).where(Item.id == assignment.item_id)).one()
    number = conn.scalar(select(Round.number).where(Round.id == item.round_id))
    prompt = conn.scalar(select(Record.prompt).where(Record.id == item.record_id))
    texts = dict(conn.execute(select(Completion.id, Completion.text)
                              .where(Completion.id.in_(assignment.shown_order))).all())
    view = {"rewrite": "rewrite", "rank": "pair", "ranking": "rank"}[item.kind]
    return Shown(assignment=assignment.id, token=secrets.token_hex(16), view=view, round=int(number),
                 prompt=prompt, completions=[texts[c] for c in assignment.shown_order],
                 suggestion=assignment.suggestion)


def _draw(key: str) -> float:
    """A uniform number in [0, 1) fixed by ``key`` (reproducible across processes, unlike hash())."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64

