"""The one contract every preference learner honours: ``fit(x, y)`` on labelled pair features, then
``predict(x)`` -> P(A ≻ B) with an epistemic uncertainty, for scores, selection and simulation alike.

Features are pair differences x = f(A) − f(B) (any f: embeddings, LM hidden states); y is 1 where A
won and 0 where B won, or the share of votes for A (a soft label, from several annotators), and an
optional weight says how much each pair counts (e.g. its number of votes). A learner treats every pair
also swapped, so P(A ≻ B | x) = 1 − P(A ≻ B | −x).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.errors import CurateError

MIN_LABELS = 10


@dataclass
class Prediction:
    p: np.ndarray  # P(A ≻ B) per pair
    epistemic: np.ndarray  # what more labels could still teach (BALD: mutual information), per pair
    variance: np.ndarray  # of P(A ≻ B) across members or the posterior
    vote_entropy: np.ndarray  # entropy of the share of members (posterior mass) that prefer A
    margin_mean: np.ndarray  # the reward margin r(A) − r(B) (the logit of P(A ≻ B)): its mean over members or posterior
    margin_std: np.ndarray  # and its standard deviation (epistemic: what the members or posterior leave open)
    members: np.ndarray | None = None  # members x pairs, for learners that are committees

    def scores(self, prefix: str = "committee") -> dict[str, np.ndarray]:
        """As the pool view names a committee's scores (what the strategies read)."""
        return {f"{prefix}.p_mean": self.p, f"{prefix}.p_var": self.variance,
                f"{prefix}.vote_entropy": self.vote_entropy, f"{prefix}.bald": self.epistemic,
                f"{prefix}.margin_mean": self.margin_mean, f"{prefix}.margin_std": self.margin_std}


class Learner:
    name: str
    options: tuple[str, ...] = ()  # the [learner] settings of curate.toml it takes (``configured_learner``)

    def fit(self, x: np.ndarray, y: np.ndarray, *, weight: np.ndarray | None = None) -> Learner:
        raise NotImplementedError

    def predict(self, x: np.ndarray) -> Prediction:
        raise NotImplementedError


def check_training_data(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float features, labels in [0, 1] and positive weights (default 1) of equal length, at least
    MIN_LABELS pairs."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(y):
        raise CurateError(f"a learner needs one feature row per label, not {x.shape} features for {len(y)} labels")
    if len(w) != len(y):
        raise CurateError(f"a learner needs one weight per label, not {len(w)} weights for {len(y)} labels")
    if len(y) < MIN_LABELS:
        raise CurateError(f"a learner needs at least {MIN_LABELS} labelled pairs, not {len(y)}")
    if not ((y >= 0) & (y <= 1)).all():
        raise CurateError("pair labels must be 1 (A won), 0 (B won) or the share of votes for A")
    if not (np.isfinite(w) & (w > 0)).all():
        raise CurateError("pair weights must be positive numbers")
    if not np.isfinite(x).all():
        raise CurateError("pair features hold missing or non-finite values")
    return x, y, w


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """H(p) in nats of a two-way choice, elementwise (p clipped away from 0 and 1)."""
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return -(q * np.log(q) + (1 - q) * np.log(1 - q))
