"""Queries an export reads beside the labels: who judged each pair, the rewrites and the rankings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from curate.store.schema import Annotator, Completion, Item, Judgment, Round


def pair_judges(conn: Connection) -> list[tuple[str, str, str, str | None, int | None]]:
    """Who judged each pair (judgments by a named annotator), by pair and name: (pair, source, annotator,
    instruction version, number of the round whose item was judged or None)."""
    query = (select(Judgment.pair_id, Judgment.source, Annotator.name, Judgment.instruction_version, Round.number)
             .join(Annotator, Annotator.id == Judgment.annotator_id)
             .join(Item, Item.id == Judgment.item_id, isouter=True)
             .join(Round, Round.id == Item.round_id, isouter=True)
             .where(Judgment.kind == "pair", Judgment.pair_id.is_not(None))
             .order_by(Judgment.pair_id, Annotator.name))
    return [(p, s, n, v, r) for p, s, n, v, r in conn.execute(query)]


def rewrites(conn: Connection, *, round_number: int | None = None
             ) -> list[tuple[str, str, str, int | None, str | None]]:
    """Every rewrite (of round ``round_number`` only, if given), by id: (rewrite, its original, record id,
    round number, author)."""
    query = (select(Completion.id, Completion.parent_id, Completion.record_id, Round.number, Annotator.name)
             .join(Annotator, Annotator.id == Completion.author_id, isouter=True)
             .join(Round, Round.id == Completion.round_id, isouter=True)
             .where(Completion.origin == "rewrite", Completion.parent_id.is_not(None)))
    if round_number is not None:
        query = query.where(Round.number == round_number)
    return [(c, o, r, n, a) for c, o, r, n, a in conn.execute(query.order_by(Completion.id))]


def rankings(conn: Connection, *, round_number: int | None = None
             ) -> list[tuple[str, list[Any], int | None, int | None, str | None, str | None]]:
    """Every ranking judgment (of round ``round_number``'s items only, if given), by id: (record id, groups of
    completion ids best first, item id, round number, annotator, instruction version)."""
    query = (select(Judgment.record_id, Judgment.ranking, Judgment.item_id, Round.number, Annotator.name,
                    Judgment.instruction_version)
             .join(Item, Item.id == Judgment.item_id, isouter=True)
             .join(Round, Round.id == Item.round_id, isouter=True)
             .join(Annotator, Annotator.id == Judgment.annotator_id, isouter=True)
             .where(Judgment.kind == "ranking", Judgment.ranking.is_not(None)))
    if round_number is not None:
        query = query.where(Round.number == round_number)
    return [(r, g, i, n, a, v) for r, g, i, n, a, v in conn.execute(query.order_by(Judgment.id))]
