"""Final labels (majority, Dawid–Skene, gold, adjudicated) and the adjudication queue, on UKP dev's real crowd
votes and gold, with decisions made through the library and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, insert, select

from curate.agreement import CHOICES, counts_of, label_table
from curate.consensus import (
    adjudicate,
    adjudication_queue,
    dawid_skene,
    final_labels,
    label_summary,
    vote_labels,
)
from curate.errors import CurateError


def test_vote_labels_decide_by_plurality_with_the_rule_of_succession():
    counts = np.array([[3, 0, 0, 0], [1, 0, 0, 0], [0, 2, 1, 0], [1, 1, 0, 0], [2, 2, 1, 0], [1, 1, 1, 2]])
    code, confidence, how = vote_labels(counts)
    assert code.tolist() == [0, 0, 1, -1, -1, 3]
    top, n = counts.max(axis=1), counts.sum(axis=1)
    decided = code >= 0
    assert np.allclose(confidence[decided], ((top + 1) / (n + 2))[decided]) and (confidence[~decided] == 0).all()
    from curate.consensus import HOW

    assert [HOW[h] for h in how] == ["unanimous", "single", "majority", "tied", "tied", "majority"]


def test_final_labels_follow_gold_votes_and_dawid_skene(annotation):
    labels = final_labels(annotation)
    table = label_table(annotation)
    counts = counts_of(table.item, table.code, len(table.items), len(CHOICES))
    summary = label_summary(labels)
    with annotation.store.read() as conn:
        from curate.store.schema import Judgment, Pair

        gold = dict(conn.execute(select(Judgment.pair_id, Judgment.choice).where(Judgment.source == "gold")).all())
        pairs = conn.scalar(select(func.count()).select_from(Pair))
    assert len(labels) == pairs == 8893 and summary["gold"] == len(gold)
    assert all(labels[p].choice == c and labels[p].how == "gold" and labels[p].confidence == 1 for p, c in gold.items())
    undecided = [p for p in table.items if p not in gold]
    for pair in undecided:
        row = counts[table.items.index(pair)]
        label = labels[pair]
        assert label.votes == {c: int(n) for c, n in zip(CHOICES, row, strict=True) if n}
        if (row == row.max()).sum() > 1:
            assert label.choice is None and label.how == "tied"
        else:
            assert label.choice == CHOICES[int(row.argmax())] and label.how in ("majority", "unanimous")
            assert label.confidence == pytest.approx((row.max() + 1) / (row.sum() + 2), abs=1e-6)
    assert summary["tied"] > 0 and summary["majority"] > 0

    # Dawid-Skene decides every split vote, with its posterior as the confidence
    ds = final_labels(annotation, method="dawid-skene")
    probas = dawid_skene(table)
    assert "tied" not in label_summary(ds) and label_summary(ds)["gold"] == len(gold)
    for pair in undecided:
        i = table.items.index(pair)
        if counts[i].max() < counts[i].sum():
            assert ds[pair].how == "model-weighted" and ds[pair].choice == CHOICES[int(probas[i].argmax())]
            assert ds[pair].confidence == pytest.approx(probas[i].max(), abs=1e-6)
    with pytest.raises(CurateError, match="unknown label method 'mace'"):
        final_labels(annotation, method="mace")


def test_adjudication_queue_decisions_audit_and_the_committee(annotation, cli):
    from curate.scores.committee import pair_labels
    from curate.store.schema import AuditEntry, Judgment, Score, ScoreRun

    queue = adjudication_queue(annotation)
    labels = final_labels(annotation)
    assert queue and all(labels[e.pair_id].how not in ("gold", "adjudicated") for e in queue)
    kinds = [e.reason.split(":")[0].split(" ")[0] for e in queue]
    assert kinds == sorted(kinds, key=["tie", "weak", "the"].index)  # ties first, then weak majorities
    assert sum(k == "tie" for k in kinds) == sum(sum(label.votes.values()) >= 2 and label.how == "tied"
                                                 for label in labels.values())
    tied = queue[0]
    assert labels[tied.pair_id].choice is None

    # refusals write nothing
    for kwargs, message in [({"note": " "}, "needs a note"), ({"lead": "bob"}, "'bob' is not a lead"),
                            ({"choice": "A"}, "choice must be one of"), ({"pair": "00"}, "too short"),
                            ({"pair": "zzzzzzzz"}, "no pair 'zzzzzzzz'")]:
        args = {"pair": tied.pair_id, "choice": "b", "note": "B answers the question", "lead": "alice", **kwargs}
        with pytest.raises(CurateError, match=message):
            adjudicate(annotation, **args)
    with annotation.store.read() as conn:
        assert conn.scalar(select(func.count()).where(Judgment.source == "adjudication")) == 0

    label = adjudicate(annotation, pair=tied.pair_id[:10], choice="b", note="B answers the question", lead="alice")
    assert (label.pair_id, label.choice, label.how, label.decided_by) == (tied.pair_id, "b", "adjudicated", "alice")
    after = final_labels(annotation)[tied.pair_id]
    assert (after.choice, after.how, after.confidence, after.votes) == ("b", "adjudicated", 1.0, tied.votes)
    assert tied.pair_id not in {e.pair_id for e in adjudication_queue(annotation)}
    with annotation.store.read() as conn:
        assert pair_labels(conn)[tied.pair_id] == 0
    # a second decision through the CLI replaces the first as the final label; both stay on record
    code, out, err = cli("adjudicate", tied.pair_id, "--choice", "tie", "--note", "equally good", "--by", "alice",
                         "--project", annotation.root)
    assert code == 0 and "final label tie (adjudicated by alice)" in out
    assert final_labels(annotation)[tied.pair_id].choice == "tie"
    with annotation.store.read() as conn:
        assert tied.pair_id not in pair_labels(conn)  # a tie carries no A/B label for the committee
        notes = conn.execute(select(AuditEntry.details).where(AuditEntry.action == "adjudicate")
                             .order_by(AuditEntry.id)).scalars().all()
        assert [(d["choice"], d["note"], d["lead"]) for d in notes] == [
            ("b", "B answers the question", "alice"), ("tie", "equally good", "alice")]
        assert notes[1]["previous"] == {"choice": "b", "lead": "alice"} and notes[1]["votes"] == tied.votes
    code, out, err = cli("adjudicate", tied.pair_id, "--choice", "a", "--by", "alice", "--project", annotation.root)
    assert code != 0 and "needs a note" in err and "Traceback" not in err

    # a majority that a confident committee contradicts enters the queue, for an A and a B majority alike;
    # one the committee agrees with, or is unsure of, does not
    clear = {}
    for p, lab in labels.items():
        if lab.how == "majority" and lab.choice in ("a", "b") and p not in {e.pair_id for e in queue}:
            clear.setdefault(lab.choice, []).append(p)
    (a1, a2), (b1, b2) = clear["a"][:2], clear["b"][:2]
    given = {a1: 0.04, b1: 0.97, a2: 0.95, b2: 0.15}  # P(A better): contradicts a1 and b1 only
    with annotation.store.write() as conn:
        run = conn.execute(insert(ScoreRun).values(kind="committee", unit="pair", model="test", fingerprint="0",
                                                   units=4, judgments=0, config={})).inserted_primary_key[0]
        for pair, p_a in given.items():
            conn.execute(insert(Score).values(run_id=run, unit_id=pair, name="p_mean", value=p_a))
    contradicted = [e for e in adjudication_queue(annotation) if e.reason.startswith("the committee")]
    assert [e.pair_id for e in contradicted] == [b1, a1]  # the strongest contradiction (P = 0.03) first
    assert contradicted[0].reason.endswith("(B) P = 0.03") and contradicted[1].reason.endswith("(A) P = 0.04")
    assert contradicted[1].committee_p == pytest.approx(0.04)
    code, out, _ = cli("adjudicate", "--json", "--project", annotation.root)
    assert code == 0 and a1 in out and b1 in out and a2 not in out


def test_queue_of_one_round_and_weak_majorities(annotation):
    from conftest import set_config

    from curate import open_project
    from curate.store.schema import Item

    with annotation.store.read() as conn:
        in_round = {p for (p,) in conn.execute(select(Item.pair_id).where(Item.round_id == 1))}
    everything = adjudication_queue(annotation)
    one = adjudication_queue(annotation, round_number=1)
    assert one and [e.pair_id for e in one] == [e.pair_id for e in everything if e.pair_id in in_round]
    set_config(annotation.root, "labels", adjudicate_below=0.75)  # 3 of 5 agreeing is now too weak
    with open_project(annotation.root) as project:
        queue = adjudication_queue(project)
    weak = [e for e in queue if e.reason.startswith("weak")]
    shares = [int(e.reason.split()[2].split("/")[0]) / int(e.reason.split()[2].split("/")[1].rstrip(":"))
              for e in weak]
    assert weak and shares == sorted(shares) and max(shares) < 0.75
    assert len(queue) > len(everything)


def test_a_tie_of_people_keeps_the_dataset_label(tmp_path, shared_data):
    import gzip

    from conftest import set_config

    from curate import ingest_files, init_project, open_project
    from curate.annotate.queue import next_item
    from curate.annotate.submit import submit
    from curate.annotate.users import add_user, get_user
    from curate.rounds import select_round

    sample = tmp_path / "hh.jsonl"
    with gzip.open(shared_data / "hh-rlhf-harmless-test-dev.jsonl.gz", "rt", encoding="utf-8") as fh:
        sample.write_text("".join(line for _, line in zip(range(40), fh, strict=False)), encoding="utf-8")
    with init_project(tmp_path / "p") as project:
        ingest_files(project, [sample])
        select_round(project, budget=4, strategy="random")
        for name in ("bob", "carol"):
            add_user(project.store, name, role="annotator", password=f"{name}-password")
    set_config(tmp_path / "p", "annotate", overlap=2)
    with open_project(tmp_path / "p") as project:
        preferred = None  # bob prefers what he sees on the left; carol the other completion
        for name in ("bob", "carol"):
            user = get_user(project.store, name)
            shown = next_item(project.store, user, project.config.annotate)
            if preferred is None:
                preferred, choice = shown.completions[0], "A"
            else:
                choice = "B" if shown.completions[0] == preferred else "A"
            submit(project.store, user, assignment=shown.assignment, token=shown.token, choice=choice)
        labels = final_labels(project)
        queue = adjudication_queue(project)
    tied = [p for p, lab in labels.items() if lab.votes]
    assert len(tied) == 1 and sum(labels[tied[0]].votes.values()) == 2
    assert labels[tied[0]].how == "dataset" and labels[tied[0]].choice in ("a", "b")
    assert [e.pair_id for e in queue] == tied and queue[0].reason.startswith("tie")
    assert label_summary(labels)["dataset"] == len(labels)
