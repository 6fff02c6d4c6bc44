"""Agreement on real multi-annotator data, checked to 1e-6 against the reference packages fed straight from
the source files (UKPConvArg1 dev: five crowd workers per pair and gold; PandaLM: three annotators), and on
judgments made in the app (with confidence, for the ordinal alpha)."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa

from curate import ingest_files, init_project
from curate.labels.agreement import agreement_report

UKP_CHOICE = {"a1": 0, "a2": 1, "equal": 2}


def rows(path):
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def reference_counts(votes: list[list[int]]) -> np.ndarray:
    return np.array([np.bincount(v, minlength=4) for v in votes])


def stored_first(project) -> dict[str, str]:
    """The text of each stored pair's completion A, by the source's row id: the store orders a pair's two
    completions by id, so the file's first answer is the store's B for about half of the pairs."""
    from sqlalchemy import select

    from curate.store.schema import Completion, Pair

    with project.store.read() as conn:
        rows = conn.execute(select(Pair.source_key, Completion.text).join(Completion, Completion.id == Pair.a_id))
        return {key.split(":", 1)[1]: text for key, text in rows}  # keys are "source:row id"


def oriented(votes: list[int], first_is_a: bool) -> list[int]:
    """Votes for the file's first/second answer as votes for the store's A/B."""
    return votes if first_is_a else [{0: 1, 1: 0}.get(v, v) for v in votes]


@pytest.fixture(scope="module")
def ukp_report(tmp_path_factory, shared_data):
    with init_project(tmp_path_factory.mktemp("agree") / "p") as project:
        ingest_files(project, [shared_data / "ukp-convarg1-dev.jsonl.gz"])
        return agreement_report(project, resamples=20), stored_first(project)


def test_ukp_dev_against_the_reference_packages(ukp_report, shared_data):
    from curate.ids import normalise_text

    data = rows(shared_data / "ukp-convarg1-dev.jsonl.gz")
    report, first = ukp_report
    flips = {r["id"]: first[r["id"]] == normalise_text(r["a1"]) for r in data}
    votes = [oriented([UKP_CHOICE[w["value"]] for w in r["workers"]], flips[r["id"]]) for r in data]
    counts = reference_counts(votes)
    five = counts[counts.sum(axis=1) == 5]
    assert report["items"] == report["items_multi"] == len(data) == 8893
    assert report["fleiss_kappa"]["raters_per_item"] == 5
    assert report["fleiss_kappa"]["value"] == pytest.approx(fleiss_kappa(five), abs=1e-6)
    assert report["krippendorff_alpha"]["value"] == pytest.approx(
        krippendorff.alpha(value_counts=counts, level_of_measurement="nominal"), abs=1e-6)
    n = counts.sum(axis=1)
    assert report["percent_agreement"]["value"] == pytest.approx(
        ((counts * (counts - 1)).sum(axis=1) / (n * (n - 1))).mean(), abs=1e-6)
    lo, hi = report["fleiss_kappa"]["ci95"]
    assert lo < report["fleiss_kappa"]["value"] < hi

    # Cohen's kappa of the two workers who share the most pairs, straight from the file
    by_worker: dict[str, dict[str, int]] = {}
    for r, v in zip(data, votes, strict=True):
        for w, vote in zip(r["workers"], v, strict=True):
            by_worker.setdefault(w["worker"], {})[r["id"]] = vote
    pairs = Counter()
    for r in data:
        names = sorted(w["worker"] for w in r["workers"])
        pairs.update((a, b) for i, a in enumerate(names) for b in names[i + 1:])
    (a, b), shared = pairs.most_common(1)[0]
    common = sorted(set(by_worker[a]) & set(by_worker[b]))
    expected = cohen_kappa_score([by_worker[a][k] for k in common], [by_worker[b][k] for k in common])
    found = next(p for p in report["cohen_kappa"]["by_pair"] if {p["a"], p["b"]} == {f"ukp:{a}", f"ukp:{b}"})
    assert found["items"] == shared and found["kappa"] == pytest.approx(expected, abs=1e-6)

    # majority of the five against gold, straight from the file
    hits = []
    for r, v in zip(data, votes, strict=True):
        c = np.bincount(v, minlength=4)
        if r["gold"] is not None and (c == c.max()).sum() == 1:
            hits.append(int(c.argmax()) == oriented([UKP_CHOICE[r["gold"]]], flips[r["id"]])[0])
    assert report["methods_vs_gold"]["majority"]["items"] == len(hits)
    assert report["methods_vs_gold"]["majority"]["accuracy"] == pytest.approx(np.mean(hits), abs=1e-6)

    # Dawid-Skene (crowd-kit, fed from the file; workers with under 20 labels pooled into one) against gold,
    # on every gold pair, on the pairs the majority decides and on the ties
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    df = pd.DataFrame([(r["id"], w["worker"], vote) for r, v in zip(data, votes, strict=True)
                       for w, vote in zip(r["workers"], v, strict=True)], columns=["task", "worker", "label"])
    given = df.worker.value_counts()
    df["worker"] = np.where(df.worker.map(given) >= 20, df.worker, "pooled")
    ds = DawidSkene(n_iter=100, tol=1e-5).fit_predict(df)
    truth = {r["id"]: oriented([UKP_CHOICE[r["gold"]]], flips[r["id"]])[0] for r in data if r["gold"] is not None}
    tied = {r["id"] for r, v in zip(data, votes, strict=True)
            if (lambda c: (c == c.max()).sum() > 1)(np.bincount(v, minlength=4))}
    methods = report["methods_vs_gold"]
    assert methods["gold_items"] == methods["dawid_skene"]["items"] == len(truth)
    assert methods["majority"]["items"] == len(hits) and methods["majority"]["ties_left_undecided"] == len(
        set(truth) & tied)
    expected = []  # the majority, a tie broken by a fair coin among the tied choices
    for r, v in zip(data, votes, strict=True):
        if r["id"] in truth:
            c = np.bincount(v, minlength=4)
            top = c == c.max()
            expected.append(float(top[truth[r["id"]]]) / top.sum())
    assert methods["majority"]["all_gold_items_ties_at_random"] == pytest.approx(np.mean(expected), abs=1e-9)
    for key, ids in (("accuracy", set(truth)), ("on_majority_items", set(truth) - tied),
                     ("on_ties", set(truth) & tied)):
        assert methods["dawid_skene"][key] == pytest.approx(np.mean([ds[k] == truth[k] for k in ids]), abs=1e-9)


def test_pandalm_three_annotators_against_the_reference_packages(tmp_path, shared_data):
    data = rows(shared_data / "pandalm-testset-v1.jsonl.gz")
    keys = [k for k in data[0] if k.startswith("annotator")]
    code = {1: 0, 2: 1, 0: 2}
    with init_project(tmp_path / "p") as project:
        ingest_files(project, [shared_data / "pandalm-testset-v1.jsonl.gz"])
        report = agreement_report(project, resamples=0)
        first = stored_first(project)
    votes = [oriented([code[int(r[k])] for k in keys], first[str(r["idx"])] == str(r["response1"]).strip())
             for r in data]
    counts = reference_counts(votes)
    assert len(keys) == 3 and report["fleiss_kappa"]["raters_per_item"] == 3
    assert report["items_multi"] == len(data)
    assert report["fleiss_kappa"]["value"] == pytest.approx(fleiss_kappa(counts), abs=1e-6)
    assert report["krippendorff_alpha"]["value"] == pytest.approx(
        krippendorff.alpha(value_counts=counts, level_of_measurement="nominal"), abs=1e-6)
    assert report["percent_agreement"]["ci95"] is None


def test_app_judgments_with_confidence_by_round_and_the_cli(annotation, cli):
    from conftest import set_config

    from curate import open_project
    from curate.annotate.queue import next_item
    from curate.annotate.submit import submit
    from curate.annotate.users import get_user

    set_config(annotation.root, "annotate", overlap=3)
    rng = np.random.default_rng(0)
    with open_project(annotation.root) as project:
        for _ in range(25):
            for name in ("bob", "carol", "dave"):
                user = get_user(project.store, name)
                shown = next_item(project.store, user, project.config.annotate)
                choice, confidence = ["A", "B", "tie"][int(rng.integers(3))], int(rng.integers(1, 6))
                submit(project.store, user, assignment=shown.assignment, token=shown.token, choice=choice,
                       confidence=confidence)
        report = agreement_report(project, round_number=1, resamples=0)
        from sqlalchemy import select

        from curate.store.schema import Annotator, Judgment

        with project.store.read() as conn:
            cells = conn.execute(select(Judgment.pair_id, Annotator.name, Judgment.confidence)
                                 .join(Annotator, Annotator.id == Judgment.annotator_id)
                                 .where(Judgment.source == "app")).all()
    assert report["annotators"] == 3 and report["items_multi"] == 25
    items = sorted({c.pair_id for c in cells})
    names = ["bob", "carol", "dave"]
    reliability = np.full((3, len(items)), np.nan)
    for c in cells:
        reliability[names.index(c.name), items.index(c.pair_id)] = c.confidence
    assert report["krippendorff_alpha"]["confidence_ordinal"] == pytest.approx(
        krippendorff.alpha(reliability_data=reliability, level_of_measurement="ordinal"), abs=1e-6)
    code, out, err = cli("agreement", "--project", annotation.root, "--round", "1", "--json", "--bootstrap", "0")
    assert code == 0, err
    assert json.loads(out)["fleiss_kappa"]["value"] == pytest.approx(report["fleiss_kappa"]["value"])
    code, out, _ = cli("agreement", "--project", annotation.root, "--round", "1", "--bootstrap", "10")
    assert code == 0 and "Fleiss' kappa (3 raters per item)" in out
    code, _, err = cli("agreement", "--project", annotation.root, "--round", "2")
    assert code == 1 and "0 items judged by two or more people" in err
