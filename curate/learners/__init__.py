"""Preference learners behind one contract (``curate.learners.base``): labelled pair features in,
P(A ≻ B) with an epistemic uncertainty out. ``make_learner(name, **options)`` builds one."""

from __future__ import annotations

from typing import Any

from curate.errors import CurateError
from curate.learners.base import Learner, Prediction
from curate.learners.committee import BTCommittee
from curate.learners.laplace import LaplaceBT

LEARNERS: dict[str, type[Learner]] = {cls.name: cls for cls in (BTCommittee, LaplaceBT)}


def make_learner(name: str, **options: Any) -> Learner:
    if name not in LEARNERS:
        raise CurateError(f"unknown learner '{name}' (learners: {', '.join(LEARNERS)})")
    try:
        return LEARNERS[name](**options)
    except TypeError:
        raise CurateError(f"learner '{name}' does not take options {sorted(options)}") from None


__all__ = ["LEARNERS", "Learner", "Prediction", "make_learner"]
