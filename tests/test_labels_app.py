"""The label precedence as a team meets it, through the real app over HTTP: a spreadsheet of 200 pairs with a
``preference`` column, ``[annotate] overlap = 2``, and two people judging round 1 in the app (bob follows the
file, carol disagrees on every fourth item she judges). The people outrank the file: pairs they agree on are
exported with weight 1.0, a 1-1 split waits for a lead whatever the file says, a round nobody judged is
refused, and ``curate agreement`` sets the people against the file."""

from __future__ import annotations

import csv
import gzip
import json

import pytest
from conftest import serving, set_config

from curate import ingest_files, init_project, open_project
from curate.annotate.client import AppClient
from curate.ids import normalise_text

PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "carol": "carol-password"}


@pytest.fixture(scope="module")
def sheet(tmp_path_factory, shared_data):
    """The project after round 1 was judged in the app: (root, the file's preferred text per shown pair, the
    pairs carol split)."""
    from curate.annotate.users import add_user
    from curate.select.rounds import select_round

    folder = tmp_path_factory.mktemp("sheet")
    rows, preferred = [], {}
    with gzip.open(shared_data / "ukp-convarg1-dev.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            if r["gold"] in ("a1", "a2") and r["a1"] != r["a2"] and len(rows) < 200:
                rows.append({"question": r["topic"], "response_a": r["a1"], "response_b": r["a2"],
                             "preference": "a" if r["gold"] == "a1" else "b"})
                key = (normalise_text(r["topic"]), frozenset((normalise_text(r["a1"]), normalise_text(r["a2"]))))
                preferred[key] = normalise_text(r["a1"] if r["gold"] == "a1" else r["a2"])
    data = folder / "pairs.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    root = folder / "proj"
    with init_project(root) as project:
        ingest_files(project, [data], mapping="prompt=question,a=response_a,b=response_b,label=preference")
    set_config(root, "annotate", overlap=2)
    set_config(root, "select", test_size=10, calibration_size=5)
    with open_project(root) as project:
        select_round(project, budget=40, strategy="random", route="rank")
        for name, password in PASSWORDS.items():
            add_user(project.store, name, role="lead" if name == "alice" else "annotator", password=password)
        with serving(root) as url:
            split = set()
            for name in ("bob", "carol"):
                with AppClient(url, name, PASSWORDS[name]) as person:
                    done = 0
                    while (item := person.item()) is not None:
                        best = preferred[(item["prompt"], frozenset(item["completions"]))]
                        follows = name == "bob" or done % 4 != 3
                        person.submit_pair(item, "A" if (item["completions"][0] == best) == follows else "B")
                        if not follows:
                            split.add(frozenset(item["completions"]))
                        done += 1
            assert done == 40
    return root, split


def pair_texts(project):
    """pair id -> (text of A, text of B)."""
    from sqlalchemy import select

    from curate.store.schema import Completion, Pair

    with project.store.read() as conn:
        texts = dict(conn.execute(select(Completion.id, Completion.text)).all())
        return {p: (texts[a], texts[b]) for p, a, b in conn.execute(select(Pair.id, Pair.a_id, Pair.b_id))}


def private(root, tmp_path):
    import shutil

    shutil.copytree(root, tmp_path / "proj")
    return tmp_path / "proj"


def test_people_outrank_the_file_and_ties_wait_for_a_lead(sheet, cli, tmp_path):
    from curate.labels import training_labels
    from curate.labels.adjudication import adjudication_queue

    root, split = private(sheet[0], tmp_path), sheet[1]
    with open_project(root) as project:
        texts = pair_texts(project)
        queue = adjudication_queue(project, round_number=1)
        learner = training_labels(project)
    split_pairs = {p for p, t in texts.items() if frozenset(t) in split}
    assert len(split_pairs) == 10
    assert {e.pair_id for e in queue} == split_pairs and all(e.reason.startswith("tie: 1 A, 1 B") for e in queue)

    out_file = tmp_path / "r1.jsonl"
    code, out, err = cli("export", "--format", "dpo", "--round", "1", "--min-agreement", "0.8", "--lineage",
                         "--weights", "--json", "--out", out_file, "--project", root)
    assert code == 0, err
    result = json.loads(out)
    rows = [json.loads(line) for line in out_file.read_text(encoding="utf-8").splitlines()]
    # the 30 pairs both people agreed on, all of them, as the people's, with full weight
    assert len(rows) == 30 and {r["pair_id"] for r in rows}.isdisjoint(split_pairs)
    assert {(r["source"], r["how"], r["weight"]) for r in rows} == {("app", "unanimous", 1.0)}
    assert all(r["annotators"] == ["bob", "carol"] and r["round"] == 1 for r in rows)
    assert result["left_out"] == {"tied among the people: waiting for a lead (curate adjudicate)": 10}
    # the frozen slices keep the file's answers, so the model is measured on them; lineage says where they came from
    test = [json.loads(line) for line in (tmp_path / "r1.test.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(test) == 10 and {(r["source"], r["weight"]) for r in test} == {("dataset", 1.0)}
    # the learner reads the same labels for these pairs (and the file's labels elsewhere, as evidence)
    assert all(learner[r["pair_id"]] == int(r["chosen"] == " " + texts[r["pair_id"]][0]) for r in rows)
    assert split_pairs.isdisjoint(learner) and len(learner) > 150

    # a lead decides one split in the app: it joins the export as adjudicated, and leaves the queue
    decided = sorted(split_pairs)[0]
    with serving(root) as url, AppClient(url, "alice", PASSWORDS["alice"]) as alice:
        final, _ = alice.call("adjudicate", decided, "b", "B answers the stance")
    assert "adjudicated by alice" in final
    code, out, err = cli("export", "--format", "dpo", "--round", "1", "--min-agreement", "0.8", "--lineage",
                         "--weights", "--json", "--out", out_file, "--project", root)
    assert code == 0, err
    rows = [json.loads(line) for line in out_file.read_text(encoding="utf-8").splitlines()]
    adjudicated = [r for r in rows if r["pair_id"] == decided]
    assert len(rows) == 31 and len(adjudicated) == 1
    assert (adjudicated[0]["how"], adjudicated[0]["source"], adjudicated[0]["weight"]) == ("adjudicated",
                                                                                         "adjudication", 1.0)
    assert adjudicated[0]["annotators"] == ["bob", "carol", "alice"]
    with open_project(root) as project:
        assert decided not in {e.pair_id for e in adjudication_queue(project, round_number=1)}
        assert training_labels(project)[decided] == 0


def test_a_round_nobody_judged_is_refused(sheet, cli, tmp_path):
    from curate.select.rounds import select_round

    copy = private(sheet[0], tmp_path)
    with open_project(copy) as project:
        select_round(project, budget=50, strategy="random", route="rank")
    for args in (("export", "--format", "dpo", "--out", tmp_path / "r2.jsonl"),
                 ("export", "--format", "dpo", "--weights", "--out", tmp_path / "r2.jsonl"),
                 ("train", "dpo-lora", "--dry-run")):
        code, _, err = cli(*args, "--round", "2", "--project", copy)
        assert code != 0 and len(err.strip().splitlines()) == 1, err
        assert "round 2 has no judgments yet: 0 of its 50 items are judged" in err
    assert not list(tmp_path.glob("*r2*"))
    # once one item is judged, the rest of the round is left out as unjudged, never filled from the file
    from curate.annotate.queue import next_item
    from curate.annotate.submit import submit
    from curate.annotate.users import get_user

    with open_project(copy) as project:
        bob = get_user(project.store, "bob")
        shown = next_item(project.store, bob, project.config.annotate)
        assert shown.round == 2
        submit(project.store, bob, assignment=shown.assignment, token=shown.token, choice="A")
    code, out, err = cli("export", "--format", "dpo", "--round", "2", "--lineage", "--json", "--out",
                         tmp_path / "r2.jsonl", "--project", copy)
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / "r2.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["source"], r["round"]) for r in rows] == [("app", 2)]
    assert json.loads(out)["left_out"] == {"selected in the round and not judged yet": 49}
    # with no overlap in the round, agreement has no figures but still sets the one person against the file
    code, out, err = cli("agreement", "--round", "2", "--json", "--bootstrap", "0", "--project", copy)
    assert code == 0, err
    report = json.loads(out)
    assert "0 items judged by two or more people" in report["note"] and report["fleiss_kappa"]["value"] is None
    assert [(v["imported"], v["items"], v["annotators"][0]["annotator"]) for v in report["vs_imported"]] == [
        ("dataset", 1, "bob")]


def test_agreement_sets_the_people_against_the_file(sheet, cli):
    root, _ = sheet
    code, out, err = cli("agreement", "--json", "--bootstrap", "0", "--project", root)
    assert code == 0, err
    report = json.loads(out)
    assert report["raters"] == "app" and report["items_multi"] == 40 and report["annotators"] == 2
    (versus,) = report["vs_imported"]
    assert (versus["imported"], versus["items"], versus["decided"]) == ("dataset", 40, 30)
    assert versus["agreement"] == 1.0  # where the two agree, they agree with the file (bob follows it)
    accuracy = {a["annotator"]: (a["items"], a["accuracy"]) for a in versus["annotators"]}
    assert accuracy == {"bob": (40, 1.0), "carol": (40, 0.75)}
    code, out, err = cli("agreement", "--bootstrap", "0", "--project", root)
    assert code == 0 and "vs imported dataset" in out, err
