"""The fast learner: a committee of Bradley–Terry heads on bootstrap resamples (``curate.learners.bradley_terry``)."""

from __future__ import annotations

import numpy as np

from curate.learners.base import Learner, Prediction, check_training_data
from curate.learners.bradley_terry import DEFAULT_C, fit_committee, margin_disagreement, member_margins


class BTCommittee(Learner):
    name = "committee"

    options = ("c", "members", "random_state")  # what it takes of [learner]

    def __init__(self, *, members: int = 8, c: float = DEFAULT_C, random_state: int = 0) -> None:
        self.members, self.c, self.random_state = members, c, random_state
        self.weights: np.ndarray | None = None

    def fit(self, x: np.ndarray, y: np.ndarray, *, weight: np.ndarray | None = None) -> BTCommittee:
        x, y, w = check_training_data(x, y, weight)
        self.weights = fit_committee(x, y, weight=w, members=self.members, c=self.c, random_state=self.random_state)
        return self

    def predict(self, x: np.ndarray) -> Prediction:
        from scipy.special import expit

        if self.weights is None:
            raise RuntimeError("fit the committee before predicting")
        margins = member_margins(self.weights, x)
        scores = margin_disagreement(margins)
        return Prediction(p=scores["p_mean"], epistemic=scores["bald"], variance=scores["p_var"],
                          vote_entropy=scores["vote_entropy"], margin_mean=scores["margin_mean"],
                          margin_std=scores["margin_std"], members=expit(margins))
