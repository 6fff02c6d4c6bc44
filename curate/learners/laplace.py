"""A Bayesian Bradley–Terry model: logistic regression (no intercept) with a Gaussian prior and a
Laplace posterior N(w_map, H⁻¹). Its predictive probability integrates over the posterior (probit
approximation), and its epistemic score is BALD over the posterior: what the model does not know,
which — unlike the entropy of p — does not grow on pairs people simply disagree about.

The swap-augmented fit (every pair also as (−x, 1 − y)) of scikit-learn with inverse regularisation C
is the MAP of n pairs under a N(0, 2C·I) prior, so the posterior precision is
H = I / (2C) + Σ w p(1 − p) x xᵀ over the n pairs (w: each pair's weight, e.g. its number of votes).
"""

from __future__ import annotations

import numpy as np

from curate.learners.base import Learner, Prediction, binary_entropy, check_training_data
from curate.learners.bradley_terry import DEFAULT_C


class LaplaceBT(Learner):
    name = "laplace"

    options = ("c",)  # what it takes of [learner]

    def __init__(self, *, c: float = DEFAULT_C, nodes: int = 32) -> None:
        self.c, self.nodes = c, nodes
        self.mean: np.ndarray | None = None
        self.covariance: np.ndarray | None = None

    def fit(self, x: np.ndarray, y: np.ndarray, *, weight: np.ndarray | None = None) -> LaplaceBT:
        from scipy.special import expit
        from sklearn.linear_model import LogisticRegression

        from curate.learners.bradley_terry import bt_design

        x, y, w = check_training_data(x, y, weight)
        design, target, sample_weight = bt_design(x, y, w)
        self.mean = LogisticRegression(C=self.c, fit_intercept=False, max_iter=1000).fit(
            design, target, sample_weight=sample_weight).coef_[0]
        p = expit(x @ self.mean)
        precision = np.eye(x.shape[1]) / (2 * self.c) + (x * (w * p * (1 - p))[:, None]).T @ x
        self.covariance = np.linalg.inv(precision)
        self.covariance = (self.covariance + self.covariance.T) / 2
        return self

    def predict(self, x: np.ndarray) -> Prediction:
        from scipy.special import expit, ndtr

        if self.mean is None or self.covariance is None:
            raise RuntimeError("fit the model before predicting")
        x = np.asarray(x, dtype=np.float64)
        mu = x @ self.mean
        var = np.sum((x @ self.covariance) * x, axis=1)
        p = expit(mu / np.sqrt(1 + np.pi * var / 8))
        # BALD needs only each pair's logit marginal N(mu, var): Gauss–Hermite quadrature, no sampling noise
        z, w = np.polynomial.hermite_e.hermegauss(self.nodes)
        w = w / w.sum()
        draws = expit(mu[None, :] + np.sqrt(var)[None, :] * z[:, None])
        bald = binary_entropy(w @ draws) - w @ binary_entropy(draws)
        prefer_a = ndtr(mu / np.maximum(np.sqrt(var), 1e-12))  # posterior mass on logits above 0
        return Prediction(p=p, epistemic=np.maximum(bald, 0.0), variance=w @ draws**2 - (w @ draws) ** 2,
                          vote_entropy=binary_entropy(prefer_a), margin_mean=mu, margin_std=np.sqrt(var))
