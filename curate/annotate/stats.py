"""Progress of the open rounds, per-annotator statistics and the leads' list of flagged items."""

from __future__ import annotations

import statistics
from typing import Any

from sqlalchemy import Connection, func, select

from curate.annotate.users import User, _aware
from curate.config import AnnotateSection
from curate.labels.vocabulary import Source
from curate.store import Store
from curate.store.schema import Annotator, Assignment, Flag, Item, Judgment, Record, Round

PREVIEW = 120


def round_progress(conn: Connection, overlap: int) -> list[dict[str, Any]]:
    """For each open round: items, items with ``overlap`` judgments (complete), judgments done / needed.
    Gold items are left out: they measure annotators and need no overlap."""
    rows = []
    for round_id, number in conn.execute(select(Round.id, Round.number).where(Round.status == "open")
                                         .order_by(Round.number)).all():
        done_per_item = (select(Item.id, func.count(Assignment.id).label("done"))
                         .outerjoin(Assignment, (Assignment.item_id == Item.id) & (Assignment.status == "done"))
                         .where(Item.round_id == round_id, Item.arm != "gold").group_by(Item.id).subquery())
        items, complete, judged = _counts(conn, done_per_item, overlap)
        rows.append({"round": int(number), "items": items, "complete": complete, "judgments": judged,
                     "needed": items * overlap})
    return rows


def _counts(conn: Connection, done_per_item: Any, overlap: int) -> tuple[int, int, int]:
    values = [int(v) for v in conn.scalars(select(done_per_item.c.done))]
    return len(values), sum(v >= overlap for v in values), sum(min(v, overlap) for v in values)


def progress_line(store: Store, user: User, rule: AnnotateSection) -> str:
    """One markdown line: who is logged in, their counts, and each open round's completion."""
    with store.read() as conn:
        mine = dict(conn.execute(select(Assignment.status, func.count()).join(Item, Item.id == Assignment.item_id)
                                 .join(Round, Round.id == Item.round_id)
                                 .where(Assignment.annotator_id == user.id, Round.status == "open")
                                 .group_by(Assignment.status)).all())
        rounds = round_progress(conn, rule.overlap)
    parts = [f"**{user.name}** ({user.role}) · done {mine.get('done', 0)} · assigned {mine.get('open', 0)}"
             + (f" · skipped {mine['skipped']}" if mine.get("skipped") else "")]
    parts += [f"round {r['round']}: {r['complete']} / {r['items']} items complete "
              f"({r['judgments']} / {r['needed']} judgments)" for r in rounds]
    return " · ".join(parts) if rounds else parts[0] + " · no open round"


def annotator_stats(store: Store, *, only: int | None = None) -> list[dict[str, Any]]:
    """Per app user: judgments, skips, flags, median seconds per judgment, and accuracy on gold items."""
    with store.read() as conn:
        query = select(Annotator.id, Annotator.name, Annotator.role).where(
            Annotator.kind == "human", Annotator.password_hash.is_not(None)).order_by(Annotator.name)
        if only is not None:
            query = query.where(Annotator.id == only)
        gold_items = {i for (i,) in conn.execute(select(Item.id).where(Item.arm == "gold")).all()}
        rows = []
        for user_id, name, role in conn.execute(query).all():
            judged = conn.execute(select(Judgment.time_ms, Judgment.pair_id, Judgment.choice, Judgment.item_id)
                                  .where(Judgment.annotator_id == user_id, Judgment.source == Source.APP)).all()
            skipped = conn.scalar(select(func.count()).select_from(Assignment).where(
                Assignment.annotator_id == user_id, Assignment.status == "skipped")) or 0
            flags = conn.scalar(select(func.count()).select_from(Flag).where(Flag.annotator_id == user_id)) or 0
            correct, scored = _gold_accuracy(conn, judged, gold_items)
            times = [j.time_ms / 1000 for j in judged if j.time_ms is not None]
            rows.append({"annotator": name, "role": role, "judgments": len(judged), "skipped": int(skipped),
                         "flagged": int(flags), "median_s": round(statistics.median(times), 1) if times else None,
                         "gold_judged": scored, "gold_accuracy": round(correct / scored, 3) if scored else None})
    return rows


def _gold_accuracy(conn: Connection, judged: list[Any], gold_items: set[int]) -> tuple[int, int]:
    """Right answers and answers on gold items (judgments whose item came from the gold arm)."""
    mine = [j for j in judged if j.item_id in gold_items and j.pair_id is not None]
    if not mine:
        return 0, 0
    from curate.labels.votes import gather, read_judgments

    answers = gather(read_judgments(conn, pair_ids={j.pair_id for j in mine}), sources=[Source.GOLD]).gold
    return sum(answers.get(j.pair_id) == j.choice for j in mine), len(mine)


def flagged_items(store: Store) -> list[dict[str, Any]]:
    """Every flagged item, newest first: round, item, who, when, why, and the start of the prompt."""
    with store.read() as conn:
        rows = conn.execute(select(Flag.item_id, Flag.reason, Flag.created_at, Annotator.name, Round.number,
                                   Item.kind, Record.prompt)
                            .join(Annotator, Annotator.id == Flag.annotator_id).join(Item, Item.id == Flag.item_id)
                            .join(Round, Round.id == Item.round_id).join(Record, Record.id == Item.record_id)
                            .order_by(Flag.created_at.desc(), Flag.id.desc())).all()
    return [{"round": r.number, "item": r.item_id, "kind": r.kind, "by": r.name,
             "at": _aware(r.created_at).isoformat(timespec="seconds"), "reason": r.reason,
             "prompt": r.prompt[:PREVIEW] + ("…" if len(r.prompt) > PREVIEW else "")} for r in rows]
