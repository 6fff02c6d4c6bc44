"""Relabel or label new? Noise-aware acquisition for annotators who disagree.

A label from one person is a noisy vote. Spending the next request on a new pair teaches the model
about a part of the pool it has not seen; spending it on another vote for a pair already asked
settles a label that may be wrong. Both are scored on one scale, in the spirit of cleanlab's
ActiveLab: by the uncertainty 1 − |2q − 1| of the pair's consensus q = (votes for A + p) / (votes + 1),
where p is the learner's P(A ≻ B), counted as one more annotator (a new pair's consensus is p).
A pair the model disputes (one vote for A, p = 0.2: q = 0.6) or people split on (1:1, p = 0.5:
q = 0.5) is worth another vote; one where the votes and the model agree (2:0, p = 0.9) is not.

A well-regularised learner's p hugs 0.5 (it ranks well but is under-confident), which would make it
a timid annotator; so p is first calibrated: its logit scaled by one factor fitted to the votes already
received (those votes then count twice, once through p: a mild pull towards what annotators said).
"""

from __future__ import annotations

import numpy as np

from curate.errors import CurateError


def relabel_or_new(p: np.ndarray, asked: np.ndarray, for_a: np.ndarray, left: np.ndarray, budget: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Positions to ask for one more vote each, the most wanted first.

    ``p``: the learner's P(A ≻ B) per pair; ``asked``: votes received so far (0: a new pair);
    ``for_a``: how many of them preferred A; ``left``: whether another vote can be had (an
    annotator who has not judged it yet). At most one request per pair."""
    p, asked, for_a = (np.asarray(v, dtype=np.float64) for v in (p, asked, for_a))
    open_ = np.flatnonzero(np.asarray(left, dtype=bool))
    if budget > len(open_):
        raise CurateError(f"a budget of {budget} is more than the {len(open_)} pairs that can take another vote")
    p = calibrated(p, asked, for_a)
    consensus = (for_a + p) / (asked + 1)  # a new pair's is p itself
    value = 1 - np.abs(2 * consensus - 1)
    order = np.lexsort((rng.random(len(open_)), -value[open_]))
    return open_[order[:budget]]


def calibrated(p: np.ndarray, asked: np.ndarray, for_a: np.ndarray) -> np.ndarray:
    """``p`` with its logit multiplied by the factor (in [0.1, 100]; above 1 sharpens) that best predicts the
    votes received so far (weighted log-loss over the asked pairs); unchanged before any vote."""
    from scipy.optimize import minimize_scalar
    from scipy.special import expit, logit

    seen = asked > 0
    if not seen.any():
        return p
    z = logit(np.clip(p, 1e-9, 1 - 1e-9))
    share, weight = for_a[seen] / asked[seen], asked[seen]

    def loss(log_scale: float) -> float:
        q = np.clip(expit(np.exp(log_scale) * z[seen]), 1e-12, 1 - 1e-12)
        return float(-(weight * (share * np.log(q) + (1 - share) * np.log(1 - q))).sum())

    best = minimize_scalar(loss, bounds=(np.log(0.1), np.log(100)), method="bounded")
    return expit(np.exp(best.x) * z)
