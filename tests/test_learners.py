"""Every preference learner honours one contract, checked on the bundled UKP sample's real embeddings
and labels: shapes, P(A ≻ B) = 1 − P(B ≻ A), determinism, better than chance on held-out pairs; and the
Laplace model's epistemic uncertainty shrinks as labels grow."""

from __future__ import annotations

import numpy as np
import pytest

from curate import open_project
from curate.errors import CurateError
from curate.learners import LEARNERS, make_learner


@pytest.fixture(scope="module")
def pairs(ukp_embedded):
    from curate.labels import final_labels, preferences
    from curate.pool.units import embedded_units
    from curate.scores.features import unit_differences

    with open_project(ukp_embedded) as project:
        units, cache = embedded_units(project, "pair")
        labels = preferences(final_labels(project))
    d = unit_differences(units, cache)
    keep = [i for i, uid in enumerate(units.ids) if uid in labels]
    return d[keep], np.array([labels[units.ids[i]] for i in keep])


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_learner_contract(name, pairs):
    x, y = pairs
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[:130], order[130:]
    learner = make_learner(name).fit(x[train], y[train])
    prediction = learner.predict(x[test])
    assert prediction.p.shape == prediction.epistemic.shape == (len(test),)
    assert ((prediction.p > 0) & (prediction.p < 1)).all() and (prediction.epistemic >= 0).all()
    swapped = learner.predict(-x[test])
    np.testing.assert_allclose(swapped.p, 1 - prediction.p, atol=1e-9)
    # the reward margin r(A) - r(B): the logit scale of p, negated by a swap, with a spread that a swap keeps
    np.testing.assert_allclose(swapped.margin_mean, -prediction.margin_mean, atol=1e-9)
    np.testing.assert_allclose(swapped.margin_std, prediction.margin_std, atol=1e-9)
    assert (prediction.margin_std > 0).all()
    logit = np.log(prediction.p / (1 - prediction.p))
    assert np.corrcoef(logit, prediction.margin_mean)[0, 1] > 0.99
    again = make_learner(name).fit(x[train], y[train]).predict(x[test])
    np.testing.assert_array_equal(again.p, prediction.p)
    assert np.mean((prediction.p > 0.5) == y[test]) > 0.6  # held-out pairs, better than chance
    few = make_learner(name).fit(x[train[:20]], y[train[:20]]).predict(x[test]).epistemic
    if name == "laplace":  # a posterior narrows with more labels; a bootstrap committee of regularised heads
        assert few.mean() > prediction.epistemic.mean()  # starts near p = 0.5 everywhere and does not


def test_learner_input_is_checked(pairs):
    x, y = pairs
    with pytest.raises(CurateError, match="at least 10 labelled pairs"):
        make_learner("laplace").fit(x[:5], y[:5])
    with pytest.raises(CurateError, match="one feature row per label"):
        make_learner("laplace").fit(x[:20], y[:19])
    bad = x[:20].copy()
    bad[3, 4] = np.nan
    with pytest.raises(CurateError, match="non-finite"):
        make_learner("committee").fit(bad, y[:20])
    from curate.config import LEARNER_NAMES

    assert tuple(LEARNERS) == LEARNER_NAMES  # what [learner] name accepts
    with pytest.raises(CurateError, match=r"unknown learner 'bayes' \(learners: committee, laplace, mlp\)"):
        make_learner("bayes")


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_soft_labels_and_weights(name, pairs):
    x, y = pairs
    x, y = x[:120], y[:120]
    hard = make_learner(name).fit(x, y).predict(x[:30]).p
    np.testing.assert_allclose(make_learner(name).fit(x, y, weight=np.ones(len(y))).predict(x[:30]).p, hard,
                               atol=1e-6)
    if name == "laplace":  # (a bootstrap committee resamples differently with more rows)
        # a 3:1 vote is a soft label of 0.75 on four votes: the same as the pair four times, three won by A
        soft = make_learner(name).fit(np.vstack([x, x[:1]]), np.r_[y, 0.75], weight=np.r_[np.ones(len(y)), 4.0])
        votes = make_learner(name).fit(np.vstack([x, np.repeat(x[:1], 4, axis=0)]), np.r_[y, 1, 1, 1, 0])
        np.testing.assert_allclose(soft.predict(x[:30]).p, votes.predict(x[:30]).p, atol=1e-4)
        # weight 2 is the same pair twice
        twice = make_learner(name).fit(np.vstack([x, x[:10]]), np.r_[y, y[:10]]).predict(x[:30]).p
        weighted = make_learner(name).fit(x, y, weight=np.r_[np.full(10, 2.0), np.ones(len(y) - 10)])
        np.testing.assert_allclose(weighted.predict(x[:30]).p, twice, atol=1e-4)
    with pytest.raises(CurateError, match="share of votes"):
        make_learner(name).fit(x, np.r_[y[:-1], 2])
    with pytest.raises(CurateError, match="weights must be positive"):
        make_learner(name).fit(x, y, weight=np.r_[np.ones(len(y) - 1), 0])
