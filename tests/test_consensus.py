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

    # a majority that a confident committee contradicts enters the queue
    clear = next(p for p, lab in labels.items() if lab.how == "majority" and lab.choice in ("a", "b")
                 and p not in {e.pair_id for e in queue})
    p_a = 0.04 if labels[clear].choice == "a" else 0.96
    with annotation.store.write() as conn:
        run = conn.execute(insert(ScoreRun).values(kind="committee", unit="pair", model="test", fingerprint="0",
                                                   units=1, judgments=0, config={})).inserted_primary_key[0]
        conn.execute(insert(Score).values(run_id=run, unit_id=clear, name="p_mean", value=p_a))
    entry = next(e for e in adjudication_queue(annotation) if e.pair_id == clear)
    assert entry.reason.startswith("the committee gives") and entry.committee_p == pytest.approx(p_a)
    assert entry.reason.endswith("P = 0.04")
    code, out, _ = cli("adjudicate", "--json", "--project", annotation.root)
    assert code == 0 and clear in out
