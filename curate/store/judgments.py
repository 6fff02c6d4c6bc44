"""Queries of judgments and of the round items people judge: pair choices, counts per round, a lead's decision."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select

from curate.store.schema import Annotator, Item, Judgment, Pair, Round
from curate.vocabulary import ItemKind

CHUNK = 500  # pair ids per query

PairChoice = tuple[str, str, str | None, str, int, int | None]  # pair, source, annotator, choice, confidence, round


@dataclass(frozen=True)
class RoundItem:
    """One item of a round: the round's number, the item's id, its pair (None for a prompt's ranking or rewrite
    without one), its arm (strategy, random, ...) and kind (rank, rewrite, ranking)."""

    round: int
    item_id: int
    pair_id: str | None
    arm: str
    kind: str


def pair_choices(conn: Connection, *, pair_ids: Iterable[str] | None = None) -> list[PairChoice]:
    """Every pair choice, oldest first (of ``pair_ids`` only, if given): (pair, source, annotator name or None,
    choice, confidence or 0, number of the round whose item it judged or None)."""
    query = (select(Judgment.pair_id, Judgment.source, Annotator.name, Judgment.choice, Judgment.confidence,
                    Round.number)
             .join(Annotator, Annotator.id == Judgment.annotator_id, isouter=True)
             .join(Item, Item.id == Judgment.item_id, isouter=True)
             .join(Round, Round.id == Item.round_id, isouter=True)
             .where(Judgment.kind == "pair", Judgment.choice.is_not(None), Judgment.pair_id.is_not(None))
             .order_by(Judgment.created_at, Judgment.id))
    if pair_ids is not None:
        wanted = sorted(set(pair_ids))
        rows = [r for i in range(0, len(wanted), CHUNK)  # a pair's rows are all in one chunk, oldest first
                for r in conn.execute(query.where(Judgment.pair_id.in_(wanted[i:i + CHUNK])))]
    else:
        rows = conn.execute(query).all()
    return [(pair, source, name, choice, confidence or 0, number)
            for pair, source, name, choice, confidence, number in rows]


def round_items(conn: Connection, *, round_number: int | None = None) -> list[RoundItem]:
    """The items of every round (of round ``round_number`` only, if given), in id order."""
    query = (select(Round.number, Item.id, Item.pair_id, Item.arm, Item.kind)
             .join(Round, Round.id == Item.round_id).order_by(Item.id))
    if round_number is not None:
        query = query.where(Round.number == round_number)
    return [RoundItem(int(n), int(i), p, arm, kind) for n, i, p, arm, kind in conn.execute(query)]


def judged_items(conn: Connection, *, round_number: int) -> int:
    """How many of round ``round_number``'s items have a judgment (of any source)."""
    return int(conn.scalar(select(func.count(func.distinct(Judgment.item_id)))
                           .join(Item, Item.id == Judgment.item_id).join(Round, Round.id == Item.round_id)
                           .where(Round.number == round_number)) or 0)


def round_judgments(conn: Connection, *, round_number: int, source: str) -> int:
    """How many judgments of ``source`` were made on round ``round_number``'s items."""
    return int(conn.scalar(select(func.count(Judgment.id)).join(Item, Item.id == Judgment.item_id)
                           .join(Round, Round.id == Item.round_id)
                           .where(Round.number == round_number, Judgment.source == source)) or 0)


def pairs_with_prefix(conn: Connection, *, prefix: str, limit: int = 2) -> list[tuple[str, str]]:
    """(pair id, record id) of up to ``limit`` pairs whose id starts with ``prefix``."""
    return [(p, r) for p, r in conn.execute(select(Pair.id, Pair.record_id)
                                            .where(Pair.id.startswith(prefix, autoescape=True)).limit(limit))]


def latest_rank_item(conn: Connection, *, pair_id: str) -> int | None:
    """The newest item that asked to rank ``pair_id``, if any."""
    return conn.scalar(select(Item.id).where(Item.pair_id == pair_id, Item.kind == ItemKind.RANK)
                       .order_by(Item.id.desc()).limit(1))


def add_pair_judgment(conn: Connection, *, source: str, record_id: str, pair_id: str, item_id: int | None,
                      annotator_id: int, choice: str, reason: str, meta: dict[str, Any]) -> str:
    """Record one pair judgment (a lead's decision, for one); its new id."""
    judgment_id = uuid.uuid4().hex
    conn.execute(insert(Judgment).values(
        id=judgment_id, kind="pair", source=source, record_id=record_id, pair_id=pair_id, item_id=item_id,
        annotator_id=annotator_id, choice=choice, reason=reason, meta=meta))
    return judgment_id


def pair_judgments(conn: Connection, *, pair_id: str) -> list[dict[str, Any]]:
    """Every judgment of ``pair_id``, oldest first: ``name`` (the annotator), ``source``, ``choice``,
    ``confidence`` and ``reason``."""
    rows = conn.execute(select(Annotator.name, Judgment.source, Judgment.choice, Judgment.confidence,
                               Judgment.reason)
                        .join(Annotator, Annotator.id == Judgment.annotator_id, isouter=True)
                        .where(Judgment.pair_id == pair_id, Judgment.kind == "pair")
                        .order_by(Judgment.created_at, Judgment.id))
    return [dict(r._mapping) for r in rows]
