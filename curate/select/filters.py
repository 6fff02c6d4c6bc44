"""Selection by the pairs' metadata (the columns ingest kept, a pair's own over its record's): ``curate select
--where`` conditions, and the ``[select] test_split`` pairs that become the frozen test slice. Values compare
as text (``curate.store.pool.meta_text``: a metadata 3 matches "3")."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from curate.errors import CurateError
from curate.ids import member_mask
from curate.select.candidates import PoolContext
from curate.store.pool import meta_text
from curate.strategies import PoolView


class FilterError(CurateError):
    """A metadata filter that is malformed, names no kept column, or matches no pair."""


@dataclass(frozen=True)
class Where:
    """One ``--where`` condition: the pair's ``key`` is (``=``) or is not (``!=``) one of ``values``. A pair
    without the key fails ``=`` and passes ``!=``."""

    key: str
    op: str
    values: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.key}{self.op}{','.join(self.values)}"

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "op": self.op, "values": list(self.values)}

    def matches(self, meta: dict[str, Any]) -> bool:
        hit = meta_text(meta.get(self.key)) in self.values
        return hit if self.op == "=" else not hit


def parse_where(text: str) -> Where:
    """``KEY=VALUE[,VALUE...]`` or ``KEY!=VALUE[,VALUE...]`` as a condition."""
    key, sep, rest = text.partition("!=")
    op = "!="
    if not sep:
        key, sep, rest = text.partition("=")
        op = "="
    values = tuple(v.strip() for v in rest.split(","))
    key = key.strip()
    if not sep or not key or not all(values):
        raise FilterError(f"--where takes KEY=VALUE[,VALUE...] or KEY!=VALUE[,...], e.g. language=en,de, not '{text}'")
    return Where(key=key, op=op, values=values)


def where_conditions(where: Iterable[str | Where] | None) -> list[Where]:
    """Conditions from text (as on the command line) or ``Where`` objects; one text is one condition."""
    items = [where] if isinstance(where, str) else where or []
    return [w if isinstance(w, Where) else parse_where(w) for w in items]


def pair_metas(context: PoolContext) -> list[dict[str, Any]]:
    """The metadata of each pool pair, in pool order ({} where it has none)."""
    return [context.meta.get(p[0], {}) for p in context.pairs]


def known_keys(context: PoolContext) -> list[str]:
    return sorted({k for m in context.meta.values() for k in m})


def where_mask(context: PoolContext, conditions: Sequence[Where]) -> np.ndarray:
    """Which pool pairs satisfy every condition. A key no pair has, or conditions no pair satisfies, are
    one-line errors (the latter with how many pairs each condition matches)."""
    keys = known_keys(context)
    for c in conditions:
        if c.key not in keys:
            known = f"keys: {', '.join(keys)}" if keys else "no pair has metadata: ingest keeps a file's other columns"
            raise FilterError(f"--where {c}: no pair has the metadata key '{c.key}' ({known})")
    metas = pair_metas(context)
    each = [np.array([c.matches(m) for m in metas], dtype=bool) for c in conditions]
    mask = np.logical_and.reduce(each) if each else np.ones(len(metas), dtype=bool)
    if not mask.any():
        counts = ", ".join(f"{int(e.sum())} match {c}" for c, e in zip(conditions, each, strict=True))
        raise FilterError(f"no pair matches --where {' '.join(map(str, conditions))} (of {len(metas)} pairs: "
                          f"{counts})")
    return mask


def restrict(pool: PoolView, context: PoolContext, conditions: Sequence[Where], mask: np.ndarray) -> PoolView:
    """The pool with the pairs that fail ``mask`` excluded from this round (both arms), and a note saying how
    many match; an error where none of the matching pairs is free."""
    free = int((mask & ~pool.labelled & ~pool.excluded).sum())
    text = " ".join(map(str, conditions))
    if not free:
        raise FilterError(f"the {int(mask.sum())} pairs matching --where {text} are all labelled, chosen in an "
                          "earlier round or in the frozen slices: none is left to choose")
    context.notes.append(f"--where {text}: {int(mask.sum())} of {len(mask)} pairs match, {free} of them free")
    return replace(pool, excluded=pool.excluded | ~mask)


def split_positions(pool: PoolView, context: PoolContext, split: str) -> np.ndarray:
    """Positions of the pairs whose metadata ``split`` is ``split`` (the [select] test_split), leaving out
    those that compare a completion with itself; an error naming the splits present where there is none. Called
    before the first round reserves slices, so the pool's only excluded pairs are those self-pairs."""
    texts = [meta_text(m.get("split")) for m in pair_metas(context)]
    hits = np.array([t == split for t in texts], dtype=bool)
    if not hits.any():
        present = Counter(t for t in texts if t is not None)
        found = ", ".join(f"{name} {n}" for name, n in present.most_common()) or "no pair has a split"
        raise FilterError(f"no pair has split={split} (splits present: {found}); set [select] test_split in "
                          "curate.toml to one of them, or to \"\" to draw the test slice")
    same = hits & pool.excluded
    if same.any():
        context.notes.append(f"{int(same.sum())} pairs of split={split} compare a completion with itself: left "
                             "out of the test slice")
    positions = np.flatnonzero(hits & ~same)
    if not len(positions):
        raise FilterError(f"every pair of split={split} compares a completion with itself: nothing to test on")
    context.notes.append(f"test slice: the {len(positions)} pairs of split={split} ([select] test_split); "
                         "test_size not used")
    return positions


def late_split_positions(pool: PoolView, context: PoolContext, split: str) -> np.ndarray:
    """Positions of the pairs of ``split`` (the [select] test_split) that joined the pool after the slices were
    reserved: they join the test slice, as test data never becomes training data. Those chosen in a round before
    test_split was set stay in it (said in a note)."""
    hits = np.array([meta_text(m.get("split")) == split for m in pair_metas(context)], dtype=bool)
    late = hits & ~pool.excluded & ~pool.labelled  # excluded: the slices, and pairs of a completion with itself
    chosen = int((hits & ~member_mask(pool.ids, context.slices) & pool.labelled).sum())
    if chosen:
        context.notes.append(f"{chosen} pairs of split={split} were chosen or judged before test_split applied to "
                             "them: they stay where they are")
    if late.any():
        context.notes.append(f"{int(late.sum())} pairs of split={split} that joined the pool after the first round "
                             "join the test slice ([select] test_split)")
    return np.flatnonzero(late)
