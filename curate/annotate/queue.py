"""The work queue: which item of the open rounds an annotator gets next, and what they are shown.

Each call is one short write transaction (its queries are in ``curate.store.assignments``). An item is handed
to at most ``overlap`` people (open or done), never twice to one person; gold (known-answer) pairs are mixed in
at ``gold_rate``; an item not submitted within the lease goes back to the queue.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from curate.annotate.users import User
from curate.config import AnnotateSection
from curate.labels.vocabulary import Source
from curate.select.routing import MAX_RANKED
from curate.store import Connection, Store, assignments, pool
from curate.store.assignments import Assigned, WorkItem

__all__ = ["MAX_RANKED", "Shown", "next_item"]


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
        assignments.lock_queue(conn)  # one queue at a time, on PostgreSQL as SQLite's write lock gives for free
        assignments.expire_leases(conn, before=now - timedelta(minutes=rule.lease_minutes))
        row = assignments.open_assignment(conn, annotator_id=user.id)
        if row is not None:
            return _show(conn, row)
        item_id = _gold_item(conn, user, rule) or assignments.queued_item(conn, annotator_id=user.id,
                                                                          overlap=rule.overlap)
        if item_id is None:
            return None
        return _show(conn, _assign(conn, item_id, user, rule, now, instruction_version))


def _gold_item(conn: Connection, user: User, rule: AnnotateSection) -> int | None:
    """At rate ``gold_rate`` (a draw seeded by user and position), a gold pair ``user`` has not judged."""
    if rule.gold_rate <= 0:
        return None
    served = assignments.served_count(conn, annotator_id=user.id)
    if _draw(f"gold:{user.name}:{served}") >= rule.gold_rate:
        return None
    round_id = assignments.first_open_round(conn)
    if round_id is None:
        return None
    candidates = assignments.gold_candidates(conn, annotator_id=user.id, source=Source.GOLD)
    if not candidates:
        return None
    pair_id = candidates[int(_draw(f"gold-pick:{user.name}:{served}") * len(candidates))]
    found = assignments.find_item(conn, round_id=round_id, pair_id=pair_id, kind="rank")
    if found is not None:
        return found
    return assignments.add_pair_item(conn, round_id=round_id, pair_id=pair_id, kind="rank", arm="gold",
                                     reason="gold: a known answer, to measure annotators")


def _assign(conn: Connection, item_id: int, user: User, rule: AnnotateSection, now: datetime,
            instruction_version: int | None) -> Assigned:
    item = assignments.work_item(conn, item_id=item_id)
    order = _completion_ids(conn, item)
    random.Random(f"order:{item.id}:{user.name}").shuffle(order)
    # never on gold items: the committee learnt their answers, so it would give them away
    suggestion = _suggestion(conn, item, order) if rule.prefill and item.kind == "rank" and item.arm != "gold" \
        else None
    # an expired lease of this person's is the same item again, freshly shown
    return assignments.serve(conn, item_id=item_id, annotator_id=user.id, shown_order=order, suggestion=suggestion,
                             served_at=now, instruction_version=instruction_version)


def _completion_ids(conn: Connection, item: WorkItem) -> list[str]:
    if item.kind == "rewrite":
        return [item.completion_id]
    a_id, b_id = assignments.pair_sides(conn, pair_id=item.pair_id)
    if item.kind == "rank":
        return [a_id, b_id]
    others = assignments.other_completions(conn, record_id=item.record_id, exclude=(a_id, b_id),
                                           limit=MAX_RANKED - 2)
    # a ranking: the selected pair and the prompt's other (not rewritten) completions
    return [a_id, b_id, *others]


def _suggestion(conn: Connection, item: WorkItem, order: list[str]) -> str | None:
    """The committee's choice for a pair, in shown terms (A = left), from the latest committee run."""
    p = assignments.committee_p(conn, pair_id=item.pair_id)
    if p is None:
        return None
    a_id = assignments.pair_a(conn, pair_id=item.pair_id)
    better = a_id if p >= 0.5 else next(c for c in order if c != a_id)
    return "A" if order[0] == better else "B"


def _show(conn: Connection, assignment: Assigned) -> Shown:
    item = assignments.work_item(conn, item_id=assignment.item_id)
    prompt = assignments.record_prompt(conn, record_id=item.record_id)
    texts = pool.completion_texts(conn, ids=assignment.shown_order)
    view = {"rewrite": "rewrite", "rank": "pair", "ranking": "rank"}[item.kind]
    return Shown(assignment=assignment.id, token=secrets.token_hex(16), view=view, round=item.round_number,
                 prompt=prompt, completions=[texts[c][0] for c in assignment.shown_order],
                 suggestion=assignment.suggestion)


def _draw(key: str) -> float:
    """A uniform number in [0, 1) fixed by ``key`` (reproducible across processes, unlike hash())."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
