"""``curate simulate`` on the bundled UKP sample: the JSON follows the contract (validated against its
schema), the same seeds give the same JSON, the PNG is written, the ratio arithmetic is right, and bad
requests are one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import REPO

from curate.simulate import label_efficiency, labels_to_reach

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
                            *extra)
    assert code == 0, err
    return json.loads((out / f"{name}.json").read_text()), stdout


def test_simulate_writes_the_contract_reproducibly(cli, samples, simulated):
    result, stdout = run(cli, samples, simulated, "first")
    import jsonschema

    jsonschema.validate(result, json.loads(SCHEMA.read_text()))
    assert set(result["strategies"]) == {"random", "uncertainty", "coreset", "cluster"}
    assert result["strategies"]["random"]["labels"] == [20, 40, 60, 80]
    assert result["splits"] == 3 and result["seeds"] == [0, 1] and result["test_groups"] == "topic"
    assert 0.4 < result["full_pool_accuracy"] <= 1 and result["target_accuracy"] == pytest.approx(
        0.98 * result["full_pool_accuracy"], abs=1e-5)
    assert (simulated / "first.png").stat().st_size > 10_000
    assert "LER@98" in stdout and "seconds" in stdout
    again, _ = run(cli, samples, simulated, "again")
    assert again == result
    laplace, _ = run(cli, samples, simulated, "laplace", "--learner", "laplace")
    assert laplace["learner"] == "laplace" and laplace["strategies"] != result["strategies"]


def test_the_votes_oracle_answers_with_real_annotator_noise(cli, samples, simulated, tmp_path):
    import gzip

    import jsonschema

    gold, _ = run(cli, samples, simulated, "gold-again")
    votes, _ = run(cli, samples, simulated, "votes", "--oracle", "votes")
    jsonschema.validate(votes, json.loads(SCHEMA.read_text()))
    assert votes["oracle"] == "votes" and gold["oracle"] == "gold"
    assert votes["full_pool_accuracy"] == gold["full_pool_accuracy"]  # the target is always set on gold labels
    assert votes["strategies"] != gold["strategies"]
    with gzip.open(samples["ukp"], "rt") as fh:
        rows = [{**json.loads(line), "workers": []} for line in fh]
    gold_only = tmp_path / "gold-only.jsonl"
    gold_only.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, _, err = cli("simulate", gold_only, "--oracle", "votes", "--budget-per-round", "20", "--rounds", "2",
                       "--splits", "2", "--cache", simulated / "cache")
    assert code == 1 and "carry annotator votes; --oracle votes needs them" in err


def test_label_efficiency_arithmetic():
    labels = [50, 100, 150, 200]
    assert labels_to_reach(labels, [0.6, 0.7, 0.8, 0.9], 0.75) == pytest.approx(125)
    assert labels_to_reach(labels, [0.6, 0.7, 0.8, 0.9], 0.95) is None
    assert labels_to_reach(labels, [0.8, 0.7, 0.8, 0.9], 0.75) == 50
    assert label_efficiency(labels, [0.6, 0.65, 0.7, 0.8], [0.6, 0.8, 0.85, 0.9], 0.8) == pytest.approx(2.0)
    assert label_efficiency(labels, [0.6, 0.6, 0.6, 0.6], [0.6, 0.8, 0.85, 0.9], 0.8) is None
    assert np.isclose(label_efficiency(labels, [0.6, 0.7, 0.8, 0.9], [0.6, 0.7, 0.8, 0.9], 0.75), 1.0)


@pytest.mark.parametrize(("args", "message"), [
    (["--strategies", "token-entropy"], "needs scores an oracle cannot give"),
    (["--oracle", "psychic"], "unknown oracle 'psychic' (oracles: gold, votes)"),
    (["--learner", "oracle"], "unknown learner 'oracle'"),
    (["--seeds", "a,b"], "--seeds takes whole numbers"),
    (["--rounds", "50"], "is more than a split's pool"),
])
def test_bad_simulate_requests(cli, samples, simulated, args, message):
    code, _, err = cli("simulate", samples["ukp"], "--budget-per-round", "20", "--rounds", "3", "--splits", "2",
                       "--cache", simulated / "cache", *args)
    assert code == 1 and message in err and "Traceback" not in err, err
