"""Every query strategy honours one contract, checked by one test over all of them, on a pool built from
the bundled UKP sample (real embeddings, a committee fitted on its real labels, k-means clusters,
near-duplicate groups from similar pairs, SmolLM2 token entropy); then each strategy's own promise."""

from __future__ import annotations

import numpy as np
import pytest

from curate import open_project
from curate.strategies import (
    STRATEGIES,
    NoNearDuplicates,
    PoolView,
    Quotas,
    RandomMix,
    StrategyError,
    make_strategy,
)
from curate.strategies.coreset import k_center_greedy
from curate.strategies.stratified import allocate

LABELLED, EXCLUDED = 40, 20


@pytest.fixture(scope="session")
def rules_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("rules") / "rules.txt"
    path.write_text("# arguments that talk about God or about evidence\n\\bgod\\b\nevidence|studies show\n")
    return path


@pytest.fixture(scope="session")
def pool(ukp_embedded, model_cache, tiny_models) -> PoolView:
    from test_scores import talk

    from curate.labels import final_labels, preferences
    from curate.learners.bradley_terry import fit_committee, margin_disagreement, member_margins
    from curate.models import DEFAULT_POLICY, resolve_model
    from curate.pool.cluster import kmeans
    from curate.pool.dedup import duplicate_groups, similar_pairs
    from curate.pool.units import embedded_units, unit_vectors
    from curate.scores.entropy import STATS, token_entropy
    from curate.scores.features import unit_differences
    from curate.scores.lm import load_causal_lm, load_reward_model
    from curate.scores.reward import committee_margins, reward_scores, standardise

    with open_project(ukp_embedded) as project:
        units, cache = embedded_units(project, "pair")
        labels = preferences(final_labels(project))
    vectors = unit_vectors(units, cache)
    differences = unit_differences(units, cache)
    n = len(units)
    rng = np.random.default_rng(0)
    order = rng.permutation(n)
    labelled = np.zeros(n, dtype=bool)
    labelled[order[:LABELLED]] = True
    excluded = np.zeros(n, dtype=bool)
    excluded[order[LABELLED:LABELLED + EXCLUDED]] = True
    train = [i for i in order[:LABELLED] if units.ids[i] in labels]
    weights = fit_committee(differences[train], np.array([labels[units.ids[i]] for i in train]), members=8)
    committee = margin_disagreement(member_margins(weights, differences))
    clusters, _ = kmeans(vectors, 6)
    i, j, _ = similar_pairs(vectors, 0.9)[:3]
    duplicates = np.full(n, -1)
    for group, (representative, members) in enumerate(duplicate_groups(n, i, j, np.arange(n))):
        duplicates[[representative, *members]] = group
    model, tokenizer = load_causal_lm(resolve_model(DEFAULT_POLICY, cache=model_cache))
    prompts = [p for p, _, _ in units.parts]
    completions = [a for _, a, _ in units.parts] + [b for _, _, b in units.parts]
    texts = list(zip(prompts * 2, completions, strict=True))
    distinct = sorted(set(texts))  # pairs share arguments: each (prompt, completion) is scored once
    values = token_entropy(model, tokenizer, talk([p for p, _ in distinct], [c for _, c in distinct]),
                           max_length=128)[:, STATS.index("entropy_mean")]
    lookup = dict(zip(distinct, values, strict=True))
    entropy = np.array([lookup[t] for t in texts])
    scores = {f"committee.{k}": v for k, v in committee.items()}
    scores["entropy.entropy_mean"] = np.maximum(entropy[:n], entropy[n:])
    reward, reward_tokenizer = load_reward_model(resolve_model(str(tiny_models["reward1"])))
    z = standardise(reward_scores(reward, reward_tokenizer, talk(prompts * 2, completions), max_length=256)[:, :1])
    scores["reward-models.margin_mean"] = committee_margins(z, np.arange(n), np.arange(n, 2 * n))["margin_mean"]
    return PoolView(ids=np.array(units.ids, dtype=object), labelled=labelled, excluded=excluded, vectors=vectors,
                    differences=differences, scores=scores, duplicates=duplicates,
                    groups={"cluster": clusters, "record": np.unique(prompts, return_inverse=True)[1]},
                    texts=["\n".join(parts) for parts in units.parts])


def every_strategy(rules: str = "") -> dict[str, object]:
    plain = {name: make_strategy(name, **({"path": rules} if name == "rules" else {})) for name in STRATEGIES
             if name != "rules" or rules}
    wrapped = {
        "uncertainty+random-mix": RandomMix(make_strategy("uncertainty"), frac=0.25),
        "coreset+quotas": Quotas(make_strategy("coreset"), min_share=0.05, max_share=0.3),
        "qbc+no-near-duplicates": NoNearDuplicates(make_strategy("qbc")),
        "hybrid+all-wrappers": RandomMix(Quotas(NoNearDuplicates(make_strategy("hybrid")), max_share=0.4)),
    }
    return {**plain, **wrapped}


STRATEGY_NAMES = sorted([*every_strategy(), "rules"])


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_strategy_contract(name, pool, rules_file):
    strategy = every_strategy(str(rules_file))[name]
    chosen = strategy.select(pool, 20, np.random.default_rng(0))
    assert chosen.dtype == np.int64 and len(chosen) == 20 and len(set(chosen.tolist())) == 20
    assert not pool.labelled[chosen].any() and not pool.excluded[chosen].any()
    assert (strategy.select(pool, 20, np.random.default_rng(0)) == chosen).all()  # same seed, same picks
    everything = len(pool.available)
    large = everything if name in STRATEGIES else everything // 4  # quotas and near-duplicates may forbid all
    assert len(strategy.select(pool, large, np.random.default_rng(1))) == large
    with pytest.raises(StrategyError, match=f"a budget of {everything + 1} is more than the {everything} units"):
        strategy.select(pool, everything + 1, np.random.default_rng(0))
    with pytest.raises(StrategyError, match="positive whole number"):
        strategy.select(pool, 0, np.random.default_rng(0))


def test_random_draws_differ_by_seed_and_cover_the_pool(pool):
    random = make_strategy("random")
    draws = [set(random.select(pool, 20, np.random.default_rng(seed)).tolist()) for seed in range(30)]
    assert len({frozenset(d) for d in draws}) == 30
    assert len(set().union(*draws)) > 0.9 * len(pool.available)


def test_uncertainty_and_committee_pick_what_the_committee_doubts(pool):
    p = pool.scores["committee.p_mean"]
    available = pool.available
    for measure in ("least-confidence", "margin", "entropy"):
        chosen = make_strategy("uncertainty", measure=measure).select(pool, 20, np.random.default_rng(0))
        assert np.abs(p[chosen] - 0.5).max() <= np.sort(np.abs(p[available] - 0.5))[19] + 1e-12
    for measure, name in (("variance", "p_var"), ("bald", "bald")):
        chosen = make_strategy("qbc", measure=measure).select(pool, 20, np.random.default_rng(0))
        values = pool.scores[f"committee.{name}"]
        assert values[chosen].min() >= np.sort(values[available])[-20]


def test_k_center_greedy_equals_the_textbook_loop(pool):
    x = pool.vectors
    centers, candidates = np.flatnonzero(pool.labelled), pool.available
    ours = k_center_greedy(x, 15, centers=centers, candidates=candidates, rng=np.random.default_rng(0))
    nearest = np.min(((x[candidates, None, :] - x[None, centers, :]) ** 2).sum(-1), axis=1)
    textbook = []
    for _ in range(15):
        best = int(np.argmax(nearest))
        textbook.append(candidates[best])
        nearest = np.minimum(nearest, ((x[candidates] - x[candidates[best]]) ** 2).sum(-1))
        nearest[best] = -np.inf
    assert ours.tolist() == textbook


def test_bal_pm_equals_the_textbook_loop_and_spreads_its_picks(pool):
    """Each pick maximises z(BALD) + beta * z(log distance to the k-th nearest acquired unit), acquired = labelled
    and picked before; with beta = 0 it is BALD's ranking, and the entropy term spreads the batch out."""
    x, bald = pool.vectors.astype(np.float64), pool.scores["committee.bald"]
    candidates, k, beta = pool.available, 5, 1.0
    ours = make_strategy("bal-pm", k=k, beta=beta).select(pool, 12, np.random.default_rng(0))
    u = bald[candidates]
    value = (u - u.mean()) / u.std() + 1e-9 * np.random.default_rng(0).random(len(candidates))
    acquired, textbook, scale = list(np.flatnonzero(pool.labelled)), [], None
    for _ in range(12):
        squared = ((x[candidates, None, :] - x[None, acquired, :]) ** 2).sum(-1)
        log_kth = 0.5 * np.log(np.sort(squared, axis=1)[:, k - 1] + 1e-12)
        scale = scale or (log_kth.mean(), log_kth.std())
        score = value + beta * (log_kth - scale[0]) / scale[1]
        score[np.isin(candidates, textbook)] = -np.inf
        textbook.append(int(candidates[np.argmax(score)]))
        acquired.append(textbook[-1])
    assert ours.tolist() == textbook

    plain = make_strategy("bal-pm", beta=0).select(pool, 12, np.random.default_rng(0))
    assert bald[plain].min() >= np.sort(bald[candidates])[-12]  # beta = 0: the most BALD
    def spread(picks):
        squared = ((x[picks, None, :] - x[None, picks, :]) ** 2).sum(-1)
        return np.sort(squared, axis=1)[:, 1].mean()  # mean squared distance to the nearest other pick
    assert spread(ours) > spread(plain)


def test_pair_choice_asks_each_prompt_its_widest_pair_and_leaves_the_prompts_to_chance(pool):
    """Prompts take turns in a random order, each giving its pair with the largest gap: |mean margin| + beta * its
    spread (delta-ucb), or the gap under one posterior draw (thompson); a pool of one pair per prompt is refused."""
    record = pool.groups["record"]
    mean, spread = pool.scores["committee.margin_mean"], pool.scores["committee.margin_std"]
    available = pool.available
    prompts = np.unique(record[available])
    assert len(prompts) >= 3 and np.bincount(record[available]).max() >= 10
    gap = np.abs(mean) + 2.0 * spread
    chosen = make_strategy("pair-choice", beta=2.0).select(pool, len(prompts) + 3, np.random.default_rng(0))
    first = chosen[:len(prompts)]
    assert sorted(record[first].tolist()) == prompts.tolist()  # every prompt once before any prompt twice
    for position in first:  # each prompt's widest pair
        assert gap[position] == gap[available[record[available] == record[position]]].max()
    for position in chosen[len(prompts):]:  # then each prompt's second widest
        same = np.sort(gap[available[record[available] == record[position]]])
        assert gap[position] == same[-2]
    orders = {tuple(record[make_strategy("pair-choice").select(pool, len(prompts), np.random.default_rng(s))])
              for s in range(6)}
    assert len(orders) > 1  # which prompt comes first is left to the seed

    draws = [make_strategy("pair-choice", rule="thompson").select(pool, len(prompts), np.random.default_rng(s))
             for s in range(6)]
    assert len({frozenset(d.tolist()) for d in draws}) > 1
    widest = {int(r): available[record[available] == r][np.argmax(gap[available[record[available] == r]])]
              for r in prompts}
    hits = np.mean([position == widest[int(record[position])] for d in draws for position in d])
    picks = np.mean([1 / (record[available] == record[position]).sum() for d in draws for position in d])
    assert hits > 2 * picks  # the widest pair far more often than a pair drawn at random from its prompt

    single = PoolView(ids=pool.ids, labelled=pool.labelled, excluded=pool.excluded, scores=pool.scores,
                      groups={"record": np.arange(len(pool))})
    with pytest.raises(StrategyError, match="every prompt here has one pair left"):
        make_strategy("pair-choice").select(single, 5, np.random.default_rng(0))
    with pytest.raises(StrategyError, match="unknown rule 'ucb'"):
        make_strategy("pair-choice", rule="ucb")


def test_cluster_stratified_allocates_by_cluster(pool):
    clusters = pool.groups["cluster"]
    sizes = np.bincount(clusters[pool.available], minlength=6)
    chosen = make_strategy("cluster").select(pool, 30, np.random.default_rng(0))
    counts = np.bincount(clusters[chosen], minlength=6)
    assert (np.abs(counts - 30 * sizes / sizes.sum()) < 1 + 1e-9).all()  # proportional, rounded
    equal = make_strategy("cluster", allocation="equal").select(pool, 30, np.random.default_rng(0))
    assert (np.bincount(clusters[equal], minlength=6) == np.minimum(allocate(sizes, 30, "equal"), sizes)).all()
    assert allocate(np.array([1, 50, 50]), 30, "equal").tolist() == [1, 15, 14]
    assert allocate(np.array([10, 30]), 8, "proportional").tolist() == [2, 6]


def test_quotas_random_mix_and_near_duplicates(pool):
    clusters = pool.groups["cluster"]
    quotas = Quotas(make_strategy("uncertainty"), min_share=0.1, max_share=0.25)
    chosen = quotas.select(pool, 40, np.random.default_rng(0))
    counts = np.bincount(clusters[chosen], minlength=6)
    assert counts.min() >= 4 and counts.max() <= 10
    with pytest.raises(StrategyError, match=r"minimum share of 0\.3 for each of 6 clusters"):
        Quotas(make_strategy("random"), min_share=0.3).select(pool, 20, np.random.default_rng(0))
    mix = RandomMix(make_strategy("uncertainty"), frac=0.1)
    positions, arms = mix.select_with_arms(pool, 50, np.random.default_rng(0))
    assert arms.count("random") == 5 and arms[:45] == ["strategy"] * 45
    alone = make_strategy("uncertainty").select(pool, 45, np.random.default_rng(0))
    assert positions[:45].tolist() == alone.tolist()
    with pytest.raises(StrategyError, match="between 0 and 1"):
        RandomMix(make_strategy("random"), frac=1.5)
    groups = pool.duplicates
    assert (groups >= 0).sum() > 10, "the sample has near-duplicate groups at 0.9"
    taken = set(groups[pool.labelled & (groups >= 0)].tolist())
    chosen = NoNearDuplicates(make_strategy("random")).select(pool, len(pool.available) // 3, np.random.default_rng(0))
    picked = groups[chosen][groups[chosen] >= 0].tolist()
    assert len(picked) == len(set(picked)) and not taken & set(picked)


def test_clear_errors_for_unknown_names_options_and_missing_inputs(pool):
    from dataclasses import replace

    with pytest.raises(StrategyError, match=r"unknown strategy 'uncertain' \(strategies: random, uncertainty, qbc"):
        make_strategy("uncertain")
    with pytest.raises(StrategyError, match=r"strategy 'qbc' has no option 'measur' \(options: measure, source\)"):
        make_strategy("qbc", measur="bald")
    with pytest.raises(StrategyError, match=r"unknown measure 'votes' \(measures: vote-entropy, variance, bald\)"):
        make_strategy("qbc", measure="votes")
    bare = replace(pool, scores={}, vectors=None, groups={})
    for name, hint in (("uncertainty", "run `curate score committee` first"),
                       ("token-entropy", "run `curate score entropy` first"),
                       ("coreset", "run `curate embed` first"), ("cluster", "run `curate cluster` first")):
        with pytest.raises(StrategyError, match=hint):
            make_strategy(name).select(bare, 5, np.random.default_rng(0))
    with pytest.raises(StrategyError, match="non-finite"):
        replace(pool, scores={"committee.p_mean": np.full(len(pool), np.nan)})


def test_cold_start_rules_and_reward_margin(pool, rules_file, tmp_path):
    chosen = make_strategy("rules", path=str(rules_file)).select(pool, 10, np.random.default_rng(0))
    import re

    matches = [bool(re.search(r"\bgod\b", t, re.I)) + bool(re.search("evidence|studies show", t, re.I))
               for t in pool.texts]
    available = np.sort(np.array(matches)[pool.available])[::-1]
    assert sorted((matches[i] for i in chosen), reverse=True) == available[:10].tolist() and available[0] > 0
    bad = tmp_path / "bad.txt"
    bad.write_text("# fine\nok\n(unclosed\n")
    with pytest.raises(StrategyError, match=rf"{re.escape(str(bad))}:3: not a regular expression"):
        make_strategy("rules", path=str(bad))
    with pytest.raises(StrategyError, match="needs a rules file"):
        make_strategy("rules")
    margin = np.abs(pool.scores["reward-models.margin_mean"])
    chosen = make_strategy("reward-margin").select(pool, 10, np.random.default_rng(0))
    assert margin[chosen].max() <= np.sort(margin[pool.available])[9] + 1e-12
