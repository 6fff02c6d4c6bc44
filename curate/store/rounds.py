"""Queries of rounds, their items and the frozen slices: storing a round, its status, what is taken or held out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from curate.store.bulk import bulk_insert
from curate.store.schema import Item, Pair, Round, Slice


def taken_pairs(conn: Connection) -> set[str]:
    """Pairs an item of some round already holds (chosen for experts, or a slice pair to label)."""
    return {r[0] for r in conn.execute(select(Item.pair_id).where(Item.pair_id.is_not(None)))}


def slices(conn: Connection) -> dict[str, str]:
    """The pairs of the frozen slices: pair id -> ``test`` or ``calibration``."""
    return dict(conn.execute(select(Slice.pair_id, Slice.name)).all())


def slice_count(conn: Connection) -> int:
    """How many pairs the frozen test and calibration slices hold."""
    return int(conn.scalar(select(func.count()).select_from(Slice)) or 0)


def held_out_records(conn: Connection) -> set[str]:
    """Records whose every pair is in the test or calibration slice."""
    query = (select(Pair.record_id).join(Slice, Slice.pair_id == Pair.id, isouter=True).group_by(Pair.record_id)
             .having(func.count(Slice.pair_id) == func.count(Pair.id)))
    return set(conn.scalars(query))


def add_round(conn: Connection, *, strategy: str, seed: int, config: dict[str, Any],
              slices: Sequence[tuple[str, str]], items: Sequence[dict[str, Any]]) -> int:
    """Store the next round (numbered one above the highest so far) with the ``slices`` it reserves ((pair id,
    ``test`` or ``calibration``) each) and its ``items`` (dicts of ``record_id``, ``pair_id``, ``completion_id``,
    ``kind``, ``arm``, ``score`` and ``reason``); its number."""
    number = int(conn.scalar(select(func.max(Round.number))) or 0) + 1
    round_id = conn.execute(insert(Round).values(number=number, strategy=strategy, seed=seed, config=config)
                            ).inserted_primary_key[0]
    bulk_insert(conn, Slice.__table__, [{"pair_id": pair_id, "name": name, "round_id": round_id}
                                        for pair_id, name in slices])
    bulk_insert(conn, Item.__table__, [{"round_id": round_id, **item} for item in items])
    return number


def round_id(conn: Connection, *, number: int) -> int | None:
    """The id of round ``number``, if there is one."""
    return conn.scalar(select(Round.id).where(Round.number == number))


def round_status(conn: Connection, *, number: int) -> str | None:
    """``open`` or ``closed``: the status of round ``number``, or None where there is no such round."""
    return conn.scalar(select(Round.status).where(Round.number == number))


def set_round_status(conn: Connection, *, number: int, status: str) -> None:
    """Set the status of round ``number`` (``open`` or ``closed``)."""
    conn.execute(update(Round).where(Round.number == number).values(status=status))
