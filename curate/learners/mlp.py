"""A nonlinear learner: a deep ensemble of small reward-margin networks on d = f(A) − f(B).

Member k's margin is m_k(d) = h_k(d) − h_k(−d), with h_k a one-hidden-layer network, so a swap negates it
exactly (P(A ≻ B) = 1 − P(B ≻ A) by construction, as the Bradley–Terry heads have it). Each member is fitted
on its own bootstrap resample of the pairs (drawn as per-pair counts) from its own initialisation, by full-batch
Adam on the Bradley–Terry loss with an L2 penalty; the members are scored like the committee's heads
(``bradley_terry.margin_disagreement``). All members train at once as one batched network, on torch's CPU
threads.
"""

from __future__ import annotations

import numpy as np

from curate.learners.base import Learner, Prediction, check_training_data
from curate.learners.bradley_terry import margin_disagreement

# L2 on the weights, beside the pair-weighted mean loss: the best of 1e-4 to 0.3 on the whole pools of PandaLM and hh
# dev (embedding+length and lm+length features, 5 held-out splits); from 0.1 on, only the length features survive.
DEFAULT_PENALTY = 0.03


class MLPEnsemble(Learner):
    name = "mlp"

    options = ("members", "random_state")  # what it takes of [learner]

    def __init__(self, *, members: int = 8, hidden: int = 32, penalty: float = DEFAULT_PENALTY, steps: int = 300,
                 learning_rate: float = 3e-3, random_state: int = 0) -> None:
        self.members, self.hidden, self.penalty, self.steps = members, hidden, penalty, steps
        self.learning_rate, self.random_state = learning_rate, random_state
        self.parameters: dict[str, np.ndarray] | None = None

    def fit(self, x: np.ndarray, y: np.ndarray, *, weight: np.ndarray | None = None) -> MLPEnsemble:
        import torch

        x, y, w = check_training_data(x, y, weight)
        if self.members < 2 or self.hidden < 1 or self.steps < 1 or self.penalty < 0:
            raise ValueError("the mlp learner needs members >= 2, hidden >= 1, steps >= 1 and penalty >= 0")
        rng = np.random.default_rng(self.random_state)
        counts = np.stack([np.bincount(rng.integers(0, len(y), len(y)), minlength=len(y)) for _ in range(self.members)])
        pair_weight = torch.as_tensor(counts * w, dtype=torch.float32)  # members x pairs
        pair_weight = pair_weight / pair_weight.sum(dim=1, keepdim=True)
        generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        dim = x.shape[1]
        first = torch.randn(self.members, dim, self.hidden, generator=generator) / np.sqrt(dim)
        bias = torch.zeros(self.members, 1, self.hidden)
        second = torch.randn(self.members, self.hidden, generator=generator) / np.sqrt(self.hidden)
        params = [p.requires_grad_() for p in (first, bias, second)]
        features = torch.as_tensor(x, dtype=torch.float32)
        won = torch.as_tensor(y, dtype=torch.float32)
        optimiser = torch.optim.Adam(params, lr=self.learning_rate)
        for _ in range(self.steps):
            optimiser.zero_grad()
            margins = _margins(features, *params, torch.tanh)
            # Bradley–Terry loss with soft labels: y·log σ(m) + (1 − y)·log σ(−m), each member on its resample
            loss = (pair_weight * (won * torch.nn.functional.softplus(-margins)
                                   + (1 - won) * torch.nn.functional.softplus(margins))).sum(dim=1).sum()
            loss = loss + self.penalty * (first.square().sum() + second.square().sum())
            loss.backward()
            optimiser.step()
        self.parameters = {name: p.detach().numpy().astype(np.float64)
                           for name, p in zip(("first", "bias", "second"), params, strict=True)}
        return self

    def predict(self, x: np.ndarray) -> Prediction:
        from scipy.special import expit

        if self.parameters is None:
            raise RuntimeError("fit the ensemble before predicting")
        margins = _margins(np.asarray(x, dtype=np.float64), **self.parameters, tanh=np.tanh)
        scores = margin_disagreement(margins)
        return Prediction(p=scores["p_mean"], epistemic=scores["bald"], variance=scores["p_var"],
                          vote_entropy=scores["vote_entropy"], margin_mean=scores["margin_mean"],
                          margin_std=scores["margin_std"], members=expit(margins))


def _margins(x, first, bias, second, tanh):
    """Every member's margin h(d) − h(−d) for every pair (members x pairs), for torch tensors (``tanh`` =
    torch.tanh) or numpy arrays (np.tanh) alike: the hidden layer's product is computed once, since −d's is
    its negation."""
    z = x @ first  # members x pairs x hidden
    return ((_gelu(z + bias, tanh) - _gelu(bias - z, tanh)) * second[:, None, :]).sum(-1)


def _gelu(z, tanh):
    return 0.5 * z * (1 + tanh(0.7978845608028654 * (z + 0.044715 * z**3)))
