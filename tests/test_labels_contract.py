"""One label truth, as a property: over generated mixes of judgments (every source, every choice, two rounds,
both label methods) written to a real project's store, the learner's labels equal the export's, every export
format honours the same contract, and a round's export holds only that round's judgments."""

from __future__ import annotations

import uuid

import pytest
from conftest import set_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from curate import ingest_files, init_project, open_project
from curate.export import FORMATS, build_examples
from curate.labels import final_labels, preferences, training_labels
from curate.labels.vocabulary import CHOICES, Choice, Method, Source

PEOPLE = ("bob", "carol", "dave")
CROWD = ("w1", "w2", "w3")


@pytest.fixture(scope="module")
def base(tmp_path_factory, shared_data):
    """40 real UKP pairs without their labels; round 1 and round 2 of 12 pairs each, slices reserved."""
    import gzip
    import json

    from curate.annotate.users import add_user
    from curate.select.rounds import select_round
    from curate.store.schema import Annotator

    root = tmp_path_factory.mktemp("contract") / "proj"
    rows = []
    with gzip.open(shared_data / "ukp-convarg1-dev.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["a1"] != row["a2"] and len(rows) < 40:
                rows.append({"prompt": row["topic"], "chosen": row["a1"], "rejected": row["a2"]})
    data = root.parent / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with init_project(root) as project:
        ingest_files(project, [data], labels=False)
    set_config(root, "select", test_size=5, calibration_size=3)
    with open_project(root) as project:
        select_round(project, budget=12, strategy="random")
        select_round(project, budget=12, strategy="random")
        add_user(project.store, "alice", role="lead", password="alice-password")
        for name in PEOPLE:
            add_user(project.store, name, role="annotator", password=f"{name}-password")
        with project.store.write() as conn:
            conn.execute(insert(Annotator), [{"name": f"crowd:{w}", "kind": "imported"} for w in CROWD])
    return root


def _facts(root):
    from curate.store.schema import Annotator, Item, Pair, Round

    with open_project(root) as project, project.store.read() as conn:
        pairs = {p: r for p, r in conn.execute(select(Pair.id, Pair.record_id).order_by(Pair.id))}
        items = {p: (i, n) for p, i, n in conn.execute(select(Item.pair_id, Item.id, Round.number)
                                                          .join(Round, Round.id == Item.round_id))}
        people = dict(conn.execute(select(Annotator.name, Annotator.id)).all())
    return pairs, items, people


choice = st.sampled_from(CHOICES)
mix = st.fixed_dictionaries({
    "app": st.dictionaries(st.sampled_from(PEOPLE), st.lists(choice, min_size=1, max_size=2), max_size=3),
    "crowd": st.dictionaries(st.sampled_from(CROWD), choice, max_size=3),
    "gold": st.none() | choice, "dataset": st.none() | choice, "adjudication": st.none() | choice})


def _write(root, mixes, facts):
    """Replace every judgment of the project with ``mixes`` (one per pair, in pair order)."""
    from curate.store.schema import Judgment

    pairs, items, people = facts
    rows = []
    for (pair, record), m in zip(pairs.items(), mixes, strict=False):
        item = items.get(pair, (None, None))[0]

        def add(source, value, who=None, on_item=None, pair=pair, record=record):
            rows.append({"id": uuid.uuid4().hex, "kind": "pair", "source": source, "record_id": record,
                         "pair_id": pair, "item_id": on_item, "annotator_id": people.get(who), "choice": value,
                         "meta": {}})

        for person, votes in m["app"].items():
            if item is not None:  # people judge items of a round; a later vote replaces the earlier
                for vote in votes:
                    add("app", vote, person, item)
        for worker, vote in m["crowd"].items():
            add("crowd", vote, f"crowd:{worker}")
        for source in ("gold", "dataset"):
            if m[source] is not None:
                add(source, m[source])
        if m["adjudication"] is not None:
            add("adjudication", m["adjudication"], "alice", item)
    with open_project(root) as project, project.store.write() as conn:
        conn.execute(delete(Judgment))
        if rows:
            conn.execute(insert(Judgment), rows)


def _pair_rows(examples, root):
    """pair id -> ({(split, weight, source)}, {what the rows say}) of the pair rows of an export: a preference
    (1: A chosen) for dpo/reward/sft, (completion is A, KTO label) for kto."""
    from curate.store.schema import Pair

    with open_project(root) as project, project.store.read() as conn:
        a_of = dict(conn.execute(select(Pair.id, Pair.a_id)).all())
    out: dict[str, tuple[set, set]] = {}
    for e in examples:
        pair = e.lineage.get("pair_id")
        if pair is None:
            continue
        said = (e.chosen == a_of[pair], e.label) if e.label is not None else int(e.chosen == a_of[pair])
        where, what = out.setdefault(pair, (set(), set()))
        where.add((e.split, e.weight, e.lineage["source"]))
        what.add(said)
    return out


def _says(fmt, label):
    """What the rows of ``fmt`` must say of a pair with ``label``."""
    if fmt != "kto":
        return {label.preference}
    if label.choice == Choice.BOTH_BAD:
        return {(True, False), (False, False)}
    return {(True, label.choice == Choice.A), (False, label.choice == Choice.B)}


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mixes=st.lists(mix, min_size=40, max_size=40), method=st.sampled_from(tuple(Method)))
def test_every_export_format_honours_the_label_contract(base, fmt, mixes, method):
    """One contract over dpo, reward, sft and kto: a pair gives rows exactly when its final label says A or B
    (or both bad, for KTO), the rows say what the label says, in the pair's split, weighted by the label's
    agreement and naming its source; train holds the learner's labels; without --with-imported, only labels
    given in the project reach train."""
    from curate.store.schema import Slice

    facts = _facts(base)
    _write(base, mixes, facts)
    set_config(base, "labels", method=str(method), ds_min_labels=1)
    with open_project(base) as project:
        labels = final_labels(project)
        learner = training_labels(project)
        rows = _pair_rows(build_examples(project, fmt=fmt, with_imported=True).rows, base)
        own = _pair_rows(build_examples(project, fmt=fmt).rows, base)
        with project.store.read() as conn:
            sliced = dict(conn.execute(select(Slice.pair_id, Slice.name)).all())
    # the learner's binary labels are the final labels that say A or B, outside the slices
    assert learner == {p: y for p, y in preferences(labels).items() if p not in sliced}
    gives = {p for p, lab in labels.items() if lab.preference is not None or (fmt == "kto" and
                                                                              lab.choice == Choice.BOTH_BAD)}
    assert set(rows) == gives
    for pair, (where, what) in rows.items():
        label = labels[pair]
        assert where == {(sliced.get(pair, "train"), label.agreement, label.source)}, pair
        assert what == _says(fmt, label), pair
    train = {p for p, (where, _) in rows.items() if {w[0] for w in where} == {"train"}}
    assert {p for p in train if labels[p].preference is not None} == set(learner)
    assert set(own) == {p for p in gives if not labels[p].imported or p in sliced}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mixes=st.lists(mix, min_size=40, max_size=40))
def test_a_round_exports_only_its_own_judgments(base, mixes):
    from curate.errors import CurateError
    from curate.labels.rule import decide
    from curate.labels.votes import gather, read_judgments
    from curate.store.schema import Slice

    facts = _facts(base)
    _write(base, mixes, facts)
    set_config(base, "labels", method="majority")
    _, items, _ = facts
    with open_project(base) as project:
        with project.store.read() as conn:
            judgments = read_judgments(conn)
            sliced = {p for (p,) in conn.execute(select(Slice.pair_id))}
        for number in (1, 2):
            in_round = {p for p, (_, n) in items.items() if n == number}
            if not any(j.pair_id in in_round and j.source in (Source.APP, Source.ADJUDICATION) for j in judgments):
                with pytest.raises(CurateError, match=f"round {number} has no judgments yet"):
                    build_examples(project, fmt="dpo", round_number=number)
                continue
            rows = _pair_rows(build_examples(project, fmt="dpo", round_number=number).rows, base)
            ours = decide(gather(judgments, round_number=number))  # people's votes of this round only
            train = {p: next(iter(what)) for p, (where, what) in rows.items() if {w[0] for w in where} == {"train"}}
            assert train == {p: lab.preference for p, lab in ours.items() if p in in_round and p not in sliced
                             and lab.preference is not None and not lab.imported}
