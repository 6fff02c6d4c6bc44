"""Preference learners behind one contract (``curate.learners.base``): labelled pair features in,
P(A ≻ B) with an epistemic uncertainty out. ``make_learner(name, **options)`` builds one, and
``configured_learner`` the one curate.toml names."""

from __future__ import annotations

from typing import Any

from curate.config import LearnerSection
from curate.errors import CurateError
from curate.learners.base import Learner, Prediction
from curate.learners.committee import BTCommittee
from curate.learners.laplace import LaplaceBT

LEARNERS: dict[str, type[Learner]] = {cls.name: cls for cls in (BTCommittee, LaplaceBT)}


def configured_learner(config: LearnerSection, *, random_state: int = 0) -> Learner:
    """The learner ``[learner]`` in curate.toml names, with the options of that section it takes."""
    options = {"c": config.c, "members": config.members, "random_state": random_state}
    return make_learner(config.name, **{k: v for k, v in options.items() if k in LEARNERS[config.name].options})


def make_learner(name: str, **options: Any) -> Learner:
    if name not in LEARNERS:
        raise CurateError(f"unknown learner '{name}' (learners: {', '.join(LEARNERS)})")
    try:
        return LEARNERS[name](**options)
    except TypeError:
        raise CurateError(f"learner '{name}' does not take options {sorted(options)}") from None


__all__ = ["LEARNERS", "Learner", "Prediction", "configured_learner", "make_learner"]
