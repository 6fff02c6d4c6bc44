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
from curate.learners.mlp import MLPEnsemble

LEARNERS: dict[str, type[Learner]] = {cls.name: cls for cls in (BTCommittee, LaplaceBT, MLPEnsemble)}


def configured_learner(config: LearnerSection, *, name: str | None = None, random_state: int = 0,
                       **overrides: Any) -> Learner:
    """The learner ``[learner]`` in curate.toml names (or ``name``), with the options of that section (or
    ``overrides``, where not None) it takes."""
    cls = learner_class(name or config.name)
    settings = {"c": config.c, "members": config.members, "random_state": random_state}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**{k: v for k, v in settings.items() if k in cls.options})


def learner_class(name: str) -> type[Learner]:
    if name not in LEARNERS:
        raise CurateError(f"unknown learner '{name}' (learners: {', '.join(LEARNERS)})")
    return LEARNERS[name]


def make_learner(name: str, **options: Any) -> Learner:
    cls = learner_class(name)
    try:
        return cls(**options)
    except TypeError:
        raise CurateError(f"learner '{name}' does not take options {sorted(options)}") from None


__all__ = ["LEARNERS", "Learner", "Prediction", "configured_learner", "make_learner"]
