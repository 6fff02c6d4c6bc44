"""``curate simulate`` on the bundled UKP sample: the JSON follows the contract (validated against its
schema), the same seeds give the same JSON, the PNG is written, the ratio arithmetic is right, and bad
requests are one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import REPO

from curate.simulate.efficiency import gain_over_random, label_efficiency, labels_to_reach, stopping_point
from curate.simulate.relabel import relabel_or_new

SCHEMA = REPO / "tests" / "data" / "simulate.schema.json"  # a copy of ../shared/contracts/simulate.schema.json
SHARED_SCHEMA = REPO.parent / "shared" / "contracts" / "simulate.schema.json"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    return tmp_path_factory.mktemp("sim")


def test_the_schema_copy_is_the_shared_contract():
    if not SHARED_SCHEMA.is_file():
        pytest.skip("../shared/contracts is not next to this checkout")
    assert json.loads(SCHEMA.read_text()) == json.loads(SHARED_SCHEMA.read_text())


def run(cli, samples, out, name, *extra):
    code, stdout, err = cli("simulate", samples["ukp"], "--strategies", "uncertainty,coreset,cluster",
                            "--budget-per-round", "20", "--rounds", "3", "--seeds", "0,1", "--splits", "3",
                            "--cache", out / "cache", "--json", out / f"{name}.json", "--plot", out / f"{name}.png",
                            *(("--features", "embedding") if "--features" not in extra else ()), *extra)
    assert code == 0, err
    return json.loads((out / f"{name}.json").read_text()), stdout


def test_simulate_writes_the_contract_reproducibly(cli, samples, simulated):
    result, stdout = run(cli, samples, simulated, "first")
    import jsonschema

    jsonschema.validate(result, json.loads(SCHEMA.read_text()))
    assert set(result["strategies"]) == {"random", "uncertainty", "coreset", "cluster"}
    assert result["strategies"]["random"]["labels"] == [20, 40, 60, 80]
    assert result["splits"] == 3 and result["seeds"] == [0, 1] and result["test_groups"] == "topic"
    assert result["features"] == "embedding"
    assert 0.4 < result["full_pool_accuracy"] <= 1 and result["target_accuracy"] == pytest.approx(
        0.98 * result["full_pool_accuracy"], abs=1e-5)
    assert (simulated / "first.png").stat().st_size > 10_000
    assert "LER@98" in stdout and "seconds" in stdout and "points gained over random" in stdout
    # the gain over random at the last budget (200 and 500 are past these curves): the mean of the paired runs'
    # differences, which is the difference of the mean curves' last points
    assert set(result["gain_at"]) == {"uncertainty", "coreset", "cluster"}
    for name, gains in result["gain_at"].items():
        assert list(gains) == ["80"]
        curves = result["strategies"]
        difference = curves[name]["accuracy_mean"][-1] - curves["random"]["accuracy_mean"][-1]
        assert gains["80"]["mean"] == pytest.approx(difference, abs=2e-6)
        assert gains["80"]["ci"][0] <= gains["80"]["mean"] <= gains["80"]["ci"][1]
    again, _ = run(cli, samples, simulated, "again")
    assert again == result
    laplace, _ = run(cli, samples, simulated, "laplace", "--learner", "laplace")
    assert laplace["learner"] == "laplace" and laplace["strategies"] != result["strategies"]
    mlp, _ = run(cli, samples, simulated, "mlp", "--learner", "mlp")
    assert mlp["learner"] == "mlp" and mlp["strategies"] != result["strategies"] and mlp["full_pool_accuracy"] > 0.5


@pytest.mark.slow
def test_simulate_learns_on_lm_states_by_default(cli, samples, simulated, ukp_lm_states):
    """Simulate and `score committee --features lm` share the LM-state cache: these states were computed by
    the committee (the fixture), so simulate reuses them (its own computing is tested with the committee's)."""
    import shutil

    import jsonschema

    cache = ukp_lm_states[0] / "cache"
    shutil.copytree(cache / "models", simulated / "cache" / "models", dirs_exist_ok=True)
    shutil.copytree(cache / "scores" / "states", simulated / "cache" / "scores" / "states", dirs_exist_ok=True)
    code, _, err = cli("simulate", samples["ukp"], "--strategies", "uncertainty", "--budget-per-round", "20",
                            "--rounds", "3", "--seeds", "0", "--splits", "5", "--cache", simulated / "cache",
                            "--json", simulated / "lm.json")
    assert code == 0, err
    result = json.loads((simulated / "lm.json").read_text())
    jsonschema.validate(result, json.loads(SCHEMA.read_text()))
    assert result["features"] == "lm:SmolLM2-135M-Instruct@20"
    assert (simulated / "cache" / "scores" / "states").is_dir()  # computed once, kept for the next run


def test_the_votes_oracle_answers_with_real_annotator_noise(cli, samples, simulated, tmp_path):
    import gzip

    import jsonschema

    gold, _ = run(cli, samples, simulated, "gold-again")
    votes, _ = run(cli, samples, simulated, "votes", "--oracle", "votes")
    jsonschema.validate(votes, json.loads(SCHEMA.read_text()))
    assert votes["oracle"] == "votes" and gold["oracle"] == "gold"
    assert votes["full_pool_accuracy"] == gold["full_pool_accuracy"]  # the target is always set on gold labels
    assert votes["longer_accuracy"] == gold["longer_accuracy"]  # the length baseline, on the same test splits
    lower, stdout = run(cli, samples, simulated, "lower", "--target-share", "0.9")
    assert lower["strategies"] == gold["strategies"] and lower["target_share"] == 0.9 and "LER@90" in stdout
    assert lower["target_accuracy"] == pytest.approx(0.9 * gold["full_pool_accuracy"], abs=1e-5)
    assert votes["strategies"] != gold["strategies"]
    with gzip.open(samples["ukp"], "rt") as fh:
        rows = [{**json.loads(line), "workers": []} for line in fh]
    gold_only = tmp_path / "gold-only.jsonl"
    gold_only.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, _, err = cli("simulate", gold_only, "--oracle", "votes", "--budget-per-round", "20", "--rounds", "2",
                       "--splits", "2", "--cache", simulated / "cache")
    assert code == 1 and "carry annotator votes; --oracle votes needs them" in err


def test_the_length_baseline_picks_the_longer_completion_and_counts_a_tie_half():
    from curate.rendering import Content
    from curate.simulate.run import SimulationData, longer_accuracy

    texts = [("long answer", "short"), ("a", "bb"), ("same", "size"), ("xx", "y")]
    data = SimulationData(name="t", prompts=[Content("p")] * 4, a=[Content(a) for a, _ in texts],
                          b=[Content(b) for _, b in texts], labels=np.array([1, 1, 0, 0]), topics=None,
                          votes=[[]] * 4)
    assert longer_accuracy(data, np.arange(4)) == (1 + 0 + 0.5 + 0) / 4
    assert longer_accuracy(data, np.array([0, 1])) == 0.5


def test_label_efficiency_arithmetic():
    labels = [50, 100, 150, 200]
    assert labels_to_reach(labels, [0.6, 0.7, 0.8, 0.9], 0.75) == pytest.approx(125)
    assert labels_to_reach(labels, [0.6, 0.7, 0.8, 0.9], 0.95) is None
    assert labels_to_reach(labels, [0.8, 0.7, 0.8, 0.9], 0.75) == 50
    assert label_efficiency(labels, [0.6, 0.65, 0.7, 0.8], [0.6, 0.8, 0.85, 0.9], 0.8) == pytest.approx(2.0)
    assert label_efficiency(labels, [0.6, 0.6, 0.6, 0.6], [0.6, 0.8, 0.85, 0.9], 0.8) is None
    assert np.isclose(label_efficiency(labels, [0.6, 0.7, 0.8, 0.9], [0.6, 0.7, 0.8, 0.9], 0.75), 1.0)


def test_gain_over_random_reads_each_paired_run_at_the_budget():
    labels = [100, 300]
    random_runs = np.array([[0.6, 0.7], [0.6, 0.8]])
    runs = np.array([[0.7, 0.8], [0.6, 0.8]])  # at 200: +0.10 on the first run's split, 0 on the second's
    mean, (low, high) = gain_over_random(labels, random_runs, runs, 200)
    assert mean == pytest.approx(0.05) and -1e-9 <= low <= mean <= high <= 0.1 + 1e-9
    mean, (low, high) = gain_over_random(labels, runs, random_runs, 300)  # the other way round, at the end
    assert mean == pytest.approx(-0.05) and -0.1 - 1e-9 <= low <= mean <= high <= 1e-9


def test_a_budget_past_the_pool_is_refused_before_features_are_computed(cli, samples, tmp_path):
    """UKP names topics, so the splits (and their pools) are known before any feature; PandaLM does not (its
    splits are clusters of the features), so its request is checked against the largest pool a split can leave."""
    for sample in ("ukp", "pandalm"):
        code, _, err = cli("simulate", samples[sample], "--budget-per-round", "100", "--rounds", "40", "--splits", "5",
                           "--cache", tmp_path / sample)
        assert code == 1 and "4100 labels is more than a split's pool (" in err and "Traceback" not in err, err
        assert not (tmp_path / sample).exists()  # nothing was embedded


def test_stopping_rule_says_when_labels_stopped_paying():
    labels = [50, 100, 150, 200, 250, 300, 350]
    climbing = [0.60, 0.65, 0.70, 0.74, 0.78, 0.80, 0.82]
    assert stopping_point(labels, climbing) is None  # still 4 points per 100 labels
    flat = [0.60, 0.70, 0.75, 0.76, 0.762, 0.763, 0.763]
    # gain over the three rounds before 300: (0.763 - 0.75) / 150 labels = 0.87 points per 100, before 350: 0.2
    assert stopping_point(labels, flat) == 350
    assert stopping_point(labels, flat, gain=0.01) == 300
    from curate.errors import CurateError

    with pytest.raises(CurateError, match="positive gain"):
        stopping_point(labels, flat, gain=0)


def test_relabel_or_new_asks_again_where_the_votes_are_contested():
    # pairs: new & uncertain, new & sure, 1 vote the model disputes, 1 vote it agrees with, split 1:1, 2:0 agreed
    p = np.array([0.55, 0.95, 0.2, 0.9, 0.5, 0.9])
    asked = np.array([0, 0, 1, 1, 2, 2])
    for_a = np.array([0, 0, 1, 1, 1, 2])
    left = np.ones(6, dtype=bool)
    chosen = relabel_or_new(p, asked, for_a, left, 3, np.random.default_rng(0))
    assert chosen.tolist() == [4, 0, 2]  # the split pair, the uncertain new one, the disputed vote
    left[4] = False  # nobody left to ask about the split pair
    assert relabel_or_new(p, asked, for_a, left, 2, np.random.default_rng(0)).tolist() == [0, 2]
    from curate.errors import CurateError

    with pytest.raises(CurateError, match="more than the 5 pairs that can take another vote"):
        relabel_or_new(p, asked, for_a, left, 6, np.random.default_rng(0))


def test_relabel_spends_votes_on_contested_pairs_and_strategy_options_are_read(cli, samples, simulated):
    import jsonschema

    result, stdout = run(cli, samples, simulated, "relabel", "--oracle", "votes", "--strategies",
                         "relabel,uncertainty,qbc:measure=bald,pair-choice:rule=thompson")
    jsonschema.validate(result, json.loads(SCHEMA.read_text()))
    assert set(result["strategies"]) == {"random", "relabel", "uncertainty", "qbc:measure=bald",
                                         "pair-choice:rule=thompson"}
    assert 0 < result["strategies"]["relabel"]["reasked_share"] < 1  # some requests were second votes
    assert "reasked_share" not in result["strategies"]["uncertainty"]
    assert set(result["stopping"]) == set(result["strategies"]) and "stops at" in stdout
    plain, _ = run(cli, samples, simulated, "qbc", "--oracle", "votes", "--strategies", "qbc")
    assert plain["strategies"]["qbc"] != result["strategies"]["qbc:measure=bald"]
    assert plain["strategies"]["random"] == result["strategies"]["random"]


@pytest.mark.parametrize(("args", "message"), [
    (["--strategies", "token-entropy"], "needs scores an oracle cannot give"),
    (["--strategies", "relabel"], "relabel asks for more votes on contested pairs: it needs --oracle votes"),
    (["--strategies", "qbc:measure"], "options are key=value after the name"),
    (["--strategies", "qbc:measure=nope"], "unknown measure 'nope'"),
    (["--features", "pixels"], "unknown features 'pixels' (features: embedding, lm, embedding+length, lm+length)"),
    (["--oracle", "psychic"], "unknown oracle 'psychic' (oracles: gold, votes)"),
    (["--learner", "oracle"], "unknown learner 'oracle'"),
    (["--seeds", "a,b"], "--seeds takes whole numbers"),
    (["--rounds", "50"], "is more than a split's pool"),
    (["--target-share", "0.3"], "the target share of the full-pool accuracy must be 0.5 to 1, not 0.3"),
])
def test_bad_simulate_requests(cli, samples, simulated, args, message):
    code, _, err = cli("simulate", samples["ukp"], "--budget-per-round", "20", "--rounds", "3", "--splits", "2",
                       "--cache", simulated / "cache", *args)
    assert code == 1 and message in err and "Traceback" not in err, err


def test_pair_choice_is_refused_where_prompts_have_one_pair_before_features(cli, shared_data, tmp_path):
    """hh-rlhf gives each prompt one pair: nothing for pair choice to choose, said before any feature is computed."""
    code, _, err = cli("simulate", shared_data / "hh-rlhf-harmless-test-dev.jsonl.gz", "--strategies", "pair-choice",
                       "--budget-per-round", "20", "--rounds", "2", "--splits", "2", "--cache", tmp_path / "cache")
    assert code == 1 and "pairs share their prompt with another pair, so pair-choice has little to choose" in err
    assert not (tmp_path / "cache").exists()
