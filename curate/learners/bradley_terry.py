"""Bradley–Terry heads: a logistic regression without intercept on d = f(A) − f(B), every pair also
added swapped, so P(A ≻ B) = 1 − P(B ≻ A) by construction; and committees of them fitted on bootstrap
resamples, with the measures of their disagreement."""

from __future__ import annotations

import numpy as np

from curate.errors import CurateError
from curate.learners.base import MIN_LABELS, binary_entropy

# Inverse L2 regularisation of a Bradley–Terry head on unit-scale features (embeddings, standardised LM
# states). Measured on held-out topics/clusters (UKP dev, PandaLM): 0.03-0.1 is best on both feature
# kinds, from 300 labels to the full pool; 1.0 loses 1-2 points (docs/benchmarks.md).
DEFAULT_C = 0.1


def bt_design(d: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, targets and sample weights of a Bradley–Terry fit: each pair as (d, A won) with weight
    ``weight·y`` and (d, B won) with ``weight·(1 − y)``, and both swapped (−d). ``y`` is 1 or 0 for a hard
    label, or the share of votes for A (a soft label); ``weight`` is what a pair counts (default 1, e.g.
    its number of votes). Rows of weight 0 are left out, so a hard label gives (d, y) and (−d, 1 − y)."""
    y = np.asarray(y, dtype=np.float64)
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
    x = np.vstack([d, -d, d, -d])
    target = np.r_[np.ones(len(y)), np.zeros(len(y)), np.zeros(len(y)), np.ones(len(y))]
    sample = np.r_[w * y, w * y, w * (1 - y), w * (1 - y)]
    keep = sample > 0
    return x[keep], target[keep], sample[keep]


def fit_committee(d: np.ndarray, y: np.ndarray, *, weight: np.ndarray | None = None, members: int = 8,
                  c: float = DEFAULT_C, random_state: int = 0) -> np.ndarray:
    """Weights (members x dim) of Bradley–Terry heads, each on a bootstrap resample of the pairs
    (labels ``y`` and weights as ``bt_design`` takes them)."""
    from sklearn.linear_model import LogisticRegression

    if len(y) < MIN_LABELS:
        raise CurateError(f"the committee needs at least {MIN_LABELS} labelled pairs, the project has {len(y)}")
    if members < 2:
        raise CurateError(f"a committee needs at least 2 members, not {members}")
    rng = np.random.default_rng(random_state)
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
    weights = []
    for _ in range(members):
        sample = rng.integers(0, len(y), len(y))
        x, target, sample_weight = bt_design(d[sample], y[sample], w[sample])
        head = LogisticRegression(C=c, fit_intercept=False, max_iter=1000).fit(x, target, sample_weight=sample_weight)
        weights.append(head.coef_[0])
    return np.array(weights)


def member_margins(weights: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The reward margin r(A) − r(B) (the logit of P(A ≻ B)) of every member for every pair (members x pairs)."""
    return weights @ np.asarray(d, dtype=np.float64).T


def margin_disagreement(margins: np.ndarray) -> dict[str, np.ndarray]:
    """A committee's scores from its members' margins (members x pairs): ``disagreement`` of their P(A ≻ B) =
    σ(margin), and the margin's mean and standard deviation over the members. The fitted committee and the
    reward-model committee both score pairs this way."""
    from scipy.special import expit

    return {**disagreement(expit(margins)), "margin_mean": margins.mean(axis=0), "margin_std": margins.std(axis=0)}


def disagreement(probs: np.ndarray) -> dict[str, np.ndarray]:
    """The committee's mean P(A ≻ B), its variance, the entropy of the members' votes, and BALD
    (entropy of the mean minus the mean entropy: what the members disagree on, not what all doubt)."""
    votes = (probs > 0.5).mean(axis=0)
    return {"p_mean": probs.mean(axis=0), "p_var": probs.var(axis=0), "vote_entropy": binary_entropy(votes),
            "bald": binary_entropy(probs.mean(axis=0)) - binary_entropy(probs).mean(axis=0)}
