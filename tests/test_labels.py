"""The label rule (curate.labels): precedence, agreement, Dawid–Skene and the adjudication queue, on UKP dev's
real crowd votes and gold and on small hand-made mixes, with decisions made through the library and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, insert, select

from curate.errors import CurateError
from curate.labels import final_labels, label_summary, preferences
from curate.labels.adjudication import adjudicate, adjudication_queue
from curate.labels.agreement import label_table
from curate.labels.rule import dawid_skene, decide, vote_labels
from curate.labels.vocabulary import CHOICES, Choice, Method, Source
from curate.labels.votes import Vote, gather


def test_vote_labels_decide_by_plurality():
    counts = np.array([[3, 0, 0, 0], [1, 0, 0, 0], [0, 2, 1, 0], [1, 1, 0, 0], [2, 2, 1, 0], [1, 1, 1, 2]])
    code, how = vote_labels(counts)
    assert code.tolist() == [0, 0, 1, -1, -1, 3]
    assert how.tolist() == [2, 1, 3, 0, 0, 3]  # unanimous, single, majority, tied, tied, majority


def v(pair, source, choice, who=None, rnd=None):
    return Vote(pair, Source(source), who, Choice(choice), 0, rnd)


def test_precedence_and_agreement_on_hand_made_mixes():
    votes = [
        # people split 1-1 over a data set's label: tied, never the file's label
        v("p1", "dataset", "a"), v("p1", "app", "a", "bob"), v("p1", "app", "b", "carol"),
        # people agree against the file: theirs, with agreement 1
        v("p2", "dataset", "a"), v("p2", "app", "b", "bob"), v("p2", "app", "b", "carol"),
        # a lead decides over people and gold
        v("p3", "gold", "a"), v("p3", "app", "b", "bob"), v("p3", "adjudication", "tie", "alice"),
        # gold over the imported crowd and the data set
        v("p4", "dataset", "b"), v("p4", "crowd", "b", "w1"), v("p4", "gold", "a"),
        # an imported crowd tie falls through to the data set's label; a person's later vote replaces the earlier
        v("p5", "crowd", "a", "w1"), v("p5", "crowd", "b", "w2"), v("p5", "dataset", "b"),
        v("p6", "app", "a", "bob"), v("p6", "app", "tie", "carol"), v("p6", "app", "tie", "dave"),
        v("p7", "app", "b", "bob"), v("p7", "app", "a", "bob"), v("p7", "app", "a", "carol"),
        v("p7", "app", "b", "dave"),
        v("p8", "crowd", "a", "w1"), v("p8", "crowd", "b", "w2"),
    ]
    labels = decide(gather(votes))
    got = {p: (lab.choice, lab.how, lab.source, lab.agreement) for p, lab in labels.items()}
    assert got == {
        "p1": (None, "tied", "app", 0.0), "p2": ("b", "unanimous", "app", 1.0),
        "p3": ("tie", "adjudicated", "adjudication", 1.0), "p4": ("a", "gold", "gold", 1.0),
        "p5": ("b", "dataset", "dataset", 1.0), "p6": ("tie", "majority", "app", pytest.approx(2 / 3, abs=1e-6)),
        "p7": ("a", "majority", "app", pytest.approx(2 / 3, abs=1e-6)), "p8": (None, "tied", "crowd", 0.0)}
    assert labels["p3"].votes == {"b": 1} and labels["p3"].decided_by == "alice"
    assert preferences(labels) == {"p2": 0, "p4": 1, "p5": 0, "p7": 1}  # the binary label comes from the final one
    # Dawid-Skene weighs annotators on split majorities, but a tie stays a lead's to break
    ds = decide(gather(votes), method=Method.DAWID_SKENE, min_labels=1)
    assert (ds["p1"].how, ds["p8"].how, ds["p7"].how) == ("tied", "tied", "model-weighted")
    assert [lab.imported for lab in labels.values()] == [False, False, False, True, True, False, False, True]
    # one round's votes only: p7's votes of round 2 make it a one-vote label; imported labels are untouched
    in_rounds = [v("p7", "app", "a", "bob", 1), v("p7", "app", "b", "carol", 2), v("p7", "gold", "a")]
    assert decide(gather(in_rounds, round_number=2))["p7"].choice == "b"
    assert decide(gather(in_rounds, round_number=2, sources=[Source.APP]))["p7"].how == "single"


def test_final_labels_follow_gold_votes_and_dawid_skene(annotation):
    labels = final_labels(annotation)
    table = label_table(annotation)
    counts = table.counts()
    summary = label_summary(labels)
    with annotation.store.read() as conn:
        from curate.store.schema import Judgment, Pair

        gold = dict(conn.execute(select(Judgment.pair_id, Judgment.choice).where(Judgment.source == "gold")).all())
        pairs = conn.scalar(select(func.count()).select_from(Pair))
    assert len(labels) == pairs == 8893 and summary["gold"] == len(gold)
    assert all(labels[p].choice == c and labels[p].how == "gold" and labels[p].agreement == 1 for p, c in gold.items())
    assert all(lab.imported and lab.source in ("gold", "crowd") for lab in labels.values())
    undecided = [p for p in table.items if p not in gold]
    for pair in undecided:
        row = counts[table.items.index(pair)]
        label = labels[pair]
        assert label.votes == {c: int(n) for c, n in zip(CHOICES, row, strict=True) if n}
        if (row == row.max()).sum() > 1:
            assert label.choice is None and label.how == "tied"
        else:
            assert label.choice == CHOICES[int(row.argmax())] and label.how in ("majority", "unanimous")
            assert label.agreement == pytest.approx(row.max() / row.sum(), abs=1e-6)
    assert summary["tied"] > 0 and summary["majority"] > 0

    # Dawid-Skene decides the split votes that have a plurality (ties stay a lead's); its posterior is kept, the
    # agreement is still the share of votes
    ds = final_labels(annotation, method="dawid-skene")
    probas = dawid_skene(table)
    assert label_summary(ds)["tied"] == summary["tied"] and label_summary(ds)["gold"] == len(gold)
    for pair in undecided:
        i = table.items.index(pair)
        if (counts[i] == counts[i].max()).sum() > 1:
            assert ds[pair].how == "tied" and ds[pair].choice is None
        elif counts[i].max() < counts[i].sum():
            assert ds[pair].how == "model-weighted" and ds[pair].choice == CHOICES[int(probas[i].argmax())]
            assert ds[pair].posterior == pytest.approx(probas[i].max(), abs=1e-6)
            assert ds[pair].agreement == pytest.approx(counts[i][CHOICES.index(ds[pair].choice)] / counts[i].sum(),
                                                       abs=1e-6)
    with pytest.raises(CurateError, match="unknown label method 'mace'"):
        final_labels(annotation, method="mace")


def test_adjudication_queue_decisions_audit_and_the_committee(annotation, cli):
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
    assert (after.choice, after.how, after.agreement, after.votes) == ("b", "adjudicated", 1.0, tied.votes)
    assert tied.pair_id not in {e.pair_id for e in adjudication_queue(annotation)}
    assert preferences(final_labels(annotation))[tied.pair_id] == 0
    # a second decision through the CLI replaces the first as the final label; both stay on record
    code, out, err = cli("adjudicate", tied.pair_id, "--choice", "tie", "--note", "equally good", "--by", "alice",
                         "--project", annotation.root)
    assert code == 0 and "final label tie (adjudicated by alice)" in out
    assert final_labels(annotation)[tied.pair_id].choice == "tie"
    assert tied.pair_id not in preferences(final_labels(annotation))  # a tie carries no A/B label
    with annotation.store.read() as conn:
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


def test_a_tie_of_people_goes_to_a_lead_over_the_dataset_label(tmp_path, shared_data):
    import gzip

    from conftest import set_config

    from curate import ingest_files, init_project, open_project
    from curate.annotate.queue import next_item
    from curate.annotate.submit import submit
    from curate.annotate.users import add_user, get_user
    from curate.select.rounds import select_round

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
    assert labels[tied[0]].how == "tied" and labels[tied[0]].choice is None and labels[tied[0]].source == "app"
    assert [e.pair_id for e in queue] == tied and queue[0].reason.startswith("tie")
    assert label_summary(labels) == {"dataset": len(labels) - 1, "tied": 1}


def test_no_module_outside_the_label_package_computes_labels_from_judgments():
    """The source check the issue asks for: outside ``curate/labels`` no module reads the choice column of
    judgments, except the store's queries that serve it (the one query of pair choices, a pair's judgments for a
    lead) and a person's own answers checked against gold; and the choice list is spelled out only in the label
    vocabulary."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    allowed = {"curate/store/judgments.py": "the one query of pair choices (labels.votes) and a pair's judgments",
               "curate/store/annotation_stats.py": "a person's own answers against gold, for their accuracy"}
    readers, spelled = set(), set()
    for path in sorted(root.glob("curate/**/*.py")):
        name = path.relative_to(root).as_posix()
        if name.startswith("curate/labels/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr == "choice" and isinstance(node.value, ast.Name)
                    and node.value.id == "Judgment"):
                readers.add(name)
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                words = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                if {"tie", "both_bad"} <= words:
                    spelled.add(name)
    assert readers <= set(allowed), readers - set(allowed)
    assert not spelled, spelled
