"""``curate export`` on UKP dev's real labels and on judgments made through the app's library: imported labels
only on request, the rules for ties, both-bad, rewrites and rankings, the slices kept out of train, lineage,
byte-identical re-exports, and every format through its TRL trainer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import hh_chat_file
from sqlalchemy import select

from curate.errors import CurateError
from curate.export import build_examples, export
from curate.labels import final_labels


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_dpo_export_of_gold_and_votes_keeps_the_slices_apart(annotation, tmp_path):
    from curate.store.schema import Slice

    labels = final_labels(annotation)
    with annotation.store.read() as conn:
        slices = dict(conn.execute(select(Slice.pair_id, Slice.name)).all())
    # every label of this project came with the data: exported only on request
    with pytest.raises(CurateError, match=r"no dpo examples to train on in the project: \d+ labelled only by the "
                                          r"imported data \(--with-imported adds them\)"):
        export(annotation, fmt="dpo", out=tmp_path / "prefs.jsonl")
    assert not list(tmp_path.glob("*prefs*"))
    result = export(annotation, fmt="dpo", out=tmp_path / "prefs.jsonl", with_imported=True, lineage=True,
                    weights=True)
    files = {s: read_jsonl(tmp_path / name) for s, name in
             (("train", "prefs.jsonl"), ("test", "prefs.test.jsonl"), ("calibration", "prefs.calibration.jsonl"))}
    assert {s: i["rows"] for s, i in result["splits"].items()} == {s: len(r) for s, r in files.items()}
    decided = {p for p, lab in labels.items() if lab.choice in ("a", "b")}
    for split, rows in files.items():
        pairs = [r["pair_id"] for r in rows]
        assert len(pairs) == len(set(pairs))
        assert {slices.get(p, "train") for p in pairs} == {split}
    assert sum(len(r) for r in files.values()) == len(decided)
    assert set(files["train"][0]) == {"prompt", "chosen", "rejected", "weight", "origin", "record_id", "pair_id",
                                      "round", "item_id", "source", "annotators", "how", "instruction_versions"}
    by_pair = {r["pair_id"]: r for rows in files.values() for r in rows}
    from curate.store.schema import Completion, Pair

    with annotation.store.read() as conn:
        some = sorted(decided)[:50]
        parts = {p: (a, b) for p, a, b in conn.execute(select(Pair.id, Pair.a_id, Pair.b_id).where(Pair.id.in_(some)))}
        texts = dict(conn.execute(select(Completion.id, Completion.text)).all())
    for p in some:
        a, b = parts[p]
        win, lose = (a, b) if labels[p].choice == "a" else (b, a)
        row = by_pair[p]
        assert (row["chosen"], row["rejected"]) == (" " + texts[win], " " + texts[lose])  # TRL joins as is
        assert row["how"] == labels[p].how and row["weight"] == pytest.approx(labels[p].agreement)
        assert row["source"] == labels[p].source and (row["annotators"] == []) == (row["source"] == "gold")
    # only the TRL columns without --lineage/--weights; the same database gives the same bytes
    again = export(annotation, fmt="dpo", out=tmp_path / "again.jsonl", with_imported=True)
    assert set(read_jsonl(tmp_path / "again.jsonl")[0]) == {"prompt", "chosen", "rejected"}
    first = export(annotation, fmt="dpo", out=tmp_path / "again.jsonl", with_imported=True)
    assert first["splits"] == again["splits"]
    for kind in ("p.parquet", "folder"):
        one = export(annotation, fmt="kto", out=tmp_path / kind, with_imported=True)["splits"]
        assert export(annotation, fmt="kto", out=tmp_path / kind, with_imported=True)["splits"] == one


def test_rules_for_ties_both_bad_rewrites_and_rankings(annotation, shared_data, tmp_path, cli):
    from conftest import add_ranking_round

    from curate.annotate.queue import next_item
    from curate.annotate.submit import submit
    from curate.annotate.users import get_user
    from curate.labels.adjudication import adjudicate
    from curate.select.rounds import select_round, set_round_status

    set_round_status(annotation, 1, "closed")
    select_round(annotation, budget=1, strategy="random", route="rewrite")  # round 2
    add_ranking_round(annotation, shared_data, tmp_path)  # round 3
    bob = get_user(annotation.store, "bob")
    rewrite = next_item(annotation.store, bob, annotation.config.annotate)
    better = rewrite.completions[0] + " Several studies show it."
    submit(annotation.store, bob, assignment=rewrite.assignment, token=rewrite.token, text=better)
    ranking = next_item(annotation.store, bob, annotation.config.annotate)
    submit(annotation.store, bob, assignment=ranking.assignment, token=ranking.token, ranks=[1, 2, 2, 3])
    labels = final_labels(annotation)
    tie, both_bad = [p for p, lab in labels.items() if lab.how == "tied"][:2]
    adjudicate(annotation, pair=tie, choice="tie", note="equally good", lead="alice")
    adjudicate(annotation, pair=both_bad, choice="both_bad", note="neither argues the stance", lead="alice")

    dpo = build_examples(annotation, fmt="dpo", with_imported=True).rows
    kto = build_examples(annotation, fmt="kto", with_imported=True).rows
    sft = build_examples(annotation, fmt="sft", with_imported=True).rows
    assert not [e for e in dpo if e.lineage.get("pair_id") in (tie, both_bad)]
    bad = [e for e in kto if e.lineage.get("pair_id") == both_bad]
    assert len(bad) == 2 and not any(e.label for e in bad)
    assert not [e for e in kto if e.lineage.get("pair_id") == tie]
    rewrites = [e for e in dpo if e.lineage["origin"] == "rewrite"]
    assert len(rewrites) == 1 and rewrites[0].lineage["annotators"] == ["bob"] and rewrites[0].lineage["round"] == 2
    assert [e.lineage["origin"] for e in sft].count("rewrite") == 1
    ranked = [e for e in dpo if e.lineage["origin"] == "ranking"]
    assert len(ranked) == 1 * 2 + 1 * 1 + 2 * 1  # ranks 1 > {2, 2} > 3: every two in different groups
    assert sorted(e.label for e in kto if e.lineage["origin"] == "ranking") == [False, True]
    assert [e.lineage["origin"] for e in sft].count("ranking") == 1

    # a round's train split holds only that round's judgments; the slices are whole beside it, with their best
    # answers (here UKP's own labels: lineage says so)
    code, _, err = cli("export", "--format", "dpo", "--round", "2", "--lineage", "--out", tmp_path / "r2.jsonl",
                       "--project", annotation.root)
    assert code == 0, err
    rows = read_jsonl(tmp_path / "r2.jsonl")
    assert [(r["origin"], r["chosen"], r["source"]) for r in rows] == [("rewrite", " " + better, None)]
    test = read_jsonl(tmp_path / "r2.test.jsonl")
    assert len(test) == len([e for e in dpo if e.split == "test"]) and {r["source"] for r in test} <= {"gold", "crowd"}
    code, _, err = cli("export", "--format", "dpo", "--round", "2", "--with-imported", "--out", tmp_path / "x.jsonl",
                       "--project", annotation.root)
    assert code == 1 and "a round export holds only that round's judgments" in err
    assert not (tmp_path / "x.jsonl").exists()


def test_bad_exports_are_refused_with_one_line(sqlite_project, tmp_path, cli, shared_data):
    import gzip

    unlabelled = tmp_path / "prompts.jsonl"
    with gzip.open(shared_data / "ukp-convarg1-dev.jsonl.gz", "rt", encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    unlabelled.write_text(json.dumps({"prompt": "Argue for uniforms.", "completions": [first["a1"], first["a2"]]})
                          + "\n", encoding="utf-8")
    root = sqlite_project.root
    code, _, err = cli("ingest", unlabelled, "--project", root)
    assert code == 0, err
    for args, message in [(("--format", "dpo"), "no dpo examples to train on in the project: nothing is labelled yet"),
                          (("--format", "ppo"), "unknown export format 'ppo'"),
                          (("--format", "dpo", "--round", "4"), "there is no round 4"),
                          (("--format", "dpo", "--min-agreement", "1.5"), "--min-agreement must be between 0 and 1")]:
        code, _, err = cli("export", *args, "--out", tmp_path / "x.jsonl", "--project", root)
        assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.glob("x*")) and not list(tmp_path.glob(".x*"))
    with pytest.raises(CurateError, match="no such folder"):
        from curate.export import write_export

        write_export({"train": [{"prompt": "p", "completion": "c"}]}, tmp_path / "missing" / "x.jsonl")


@pytest.fixture(scope="module")
def round_one_exports(judged_base, tmp_path_factory):
    """Round 1 of the UKP project, judged in the app, exported in every format, with lineage and weights."""
    from curate import open_project
    from curate.export import FORMATS

    folder = tmp_path_factory.mktemp("exports")
    with open_project(judged_base) as project:
        return {fmt: export(project, fmt=fmt, out=folder / f"{fmt}.jsonl", round_number=1, lineage=True,
                            weights=True)["splits"]["train"]["path"] for fmt in FORMATS}


@pytest.fixture(scope="module")
def rank_n_exports(tmp_path_factory):
    """A rank-N project (UltraFeedback's raw layout: four scored completions per prompt, the default pairs)
    exported with its imported labels in every format."""
    from test_ingest_layouts import ultrafeedback_rows, write_jsonl

    from curate import ingest_files, init_project, open_project
    from curate.export import FORMATS

    folder = tmp_path_factory.mktemp("rank-n")
    init_project(folder / "proj")
    with open_project(folder / "proj") as project:
        ingest_files(project, [write_jsonl(folder / "uf.jsonl", ultrafeedback_rows(6))])
        return {fmt: export(project, fmt=fmt, out=folder / f"{fmt}.jsonl", with_imported=True, lineage=True,
                            weights=True)["splits"]["train"]["path"] for fmt in FORMATS}


def test_a_rank_n_export_holds_the_pairs_its_scores_order(rank_n_exports):
    """6 prompts, the best of 4 (gpt-4, 4.75) against each other: 18 preferences; SFT the best once per prompt;
    KTO each completion once, the best desirable and the rest not."""
    rows = read_jsonl(Path(rank_n_exports["dpo"]))
    assert len(rows) == 18 and {r["source"] for r in rows} == {"dataset"}
    assert all(r["chosen"].strip().startswith("Answer 1 ") and not r["rejected"].strip().startswith("Answer 1 ")
               for r in rows)
    assert sorted(r["completion"] for r in read_jsonl(Path(rank_n_exports["sft"]))) == sorted(
        f" Answer 1 to question {i}." for i in range(6))
    kto = read_jsonl(Path(rank_n_exports["kto"]))
    assert len(kto) == 24 and len({(r["prompt"], r["completion"]) for r in kto}) == 24
    assert all(r["label"] == r["completion"].strip().startswith("Answer 1 ") for r in kto)


@pytest.mark.slow
@pytest.mark.parametrize("source", ["round-one", "rank-n"])
@pytest.mark.parametrize("fmt", ["dpo", "reward", "sft", "kto"])
def test_every_format_trains_a_step_with_its_trl_trainer(fmt, source, request, tiny_models, tmp_path):
    import math

    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    exports = request.getfixturevalue("round_one_exports" if source == "round-one" else "rank_n_exports")
    data = load_dataset("json", data_files=exports[fmt], split="train")
    # a few rows (for KTO, of both kinds)
    data = data.sort("label").select([0, 1, len(data) - 2, len(data) - 1]) if fmt == "kto" else data.select(range(4))
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["causal"])
    common = {"output_dir": str(tmp_path), "max_steps": 1, "per_device_train_batch_size": 2, "bf16": False,
              "report_to": [], "dataloader_pin_memory": False, "save_strategy": "no", "use_cpu": True,
              "max_length": 256}
    if fmt == "reward":
        from trl import RewardConfig, RewardTrainer

        model = AutoModelForSequenceClassification.from_pretrained(tiny_models["reward1"], num_labels=1)
        trainer = RewardTrainer(model=model, args=RewardConfig(**common), train_dataset=data,
                                processing_class=tokenizer)
        ids = {"chosen_ids", "rejected_ids"}
    else:
        import trl

        model = AutoModelForCausalLM.from_pretrained(tiny_models["causal"])
        config, trainer_class = {"dpo": (trl.DPOConfig, trl.DPOTrainer), "sft": (trl.SFTConfig, trl.SFTTrainer),
                                 "kto": (trl.KTOConfig, trl.KTOTrainer)}[fmt]
        trainer = trainer_class(model=model, args=config(**common), train_dataset=data, processing_class=tokenizer)
        ids = {"dpo": {"prompt_ids", "chosen_ids", "rejected_ids"}, "sft": {"input_ids"},
               "kto": {"prompt_ids", "completion_ids"}}[fmt]
    assert ids <= set(trainer.train_dataset.column_names), trainer.train_dataset.column_names
    loss = trainer.train().training_loss
    assert trainer.state.global_step == 1 and math.isfinite(loss)


@pytest.mark.slow
def test_a_conversational_export_trains_a_dpo_step(sqlite_project, shared_data, tiny_models, tmp_path):
    import math

    import trl
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from curate import ingest_files

    data = hh_chat_file(shared_data, tmp_path, 6)
    rows = read_jsonl(data)
    ingest_files(sqlite_project, [data])
    export(sqlite_project, fmt="dpo", out=tmp_path / "dpo.jsonl", with_imported=True)
    exported = read_jsonl(tmp_path / "dpo.jsonl")
    assert len(exported) == 6 and all(isinstance(r["prompt"], list) and r["chosen"][0]["role"] == "assistant"
                                      for r in exported)
    assert sorted(json.dumps(r, sort_keys=True) for r in exported) == sorted(json.dumps(r, sort_keys=True)
                                                                            for r in rows)
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["causal"])
    trainer = trl.DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_models["causal"]),
        args=trl.DPOConfig(output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=2, bf16=False,
                           report_to=[], dataloader_pin_memory=False, save_strategy="no", use_cpu=True,
                           max_length=256),
        train_dataset=load_dataset("json", data_files=str(tmp_path / "dpo.jsonl"), split="train"),
        processing_class=tokenizer)
    assert math.isfinite(trainer.train().training_loss)


@pytest.mark.parametrize("name", ["x.jsonl", "x.parquet", "folder"])
def test_an_export_replaces_the_previous_set_whole_and_a_failed_one_changes_nothing(tmp_path, monkeypatch, name):
    import curate.export.files as files
    from curate.export import write_export

    def rows(tag: str, splits=("train", "test", "calibration")) -> dict:
        return {s: [{"prompt": "p", "chosen": f" {tag} {s}", "rejected": " r"}] for s in splits}

    def seen() -> dict[str, bytes]:  # every file a reader finds (through the links), hidden ones aside
        import os
        from pathlib import Path

        found = {}
        for folder, dirs, names in os.walk(tmp_path, followlinks=True):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for f in names:
                path = Path(folder, f)
                if not f.startswith(".") and path.is_file():
                    found[path.relative_to(tmp_path).as_posix()] = path.read_bytes()
        return found

    if name != "folder":  # files an older curate wrote in place: replaced with the rest of the set
        for split in ("", ".test", ".calibration"):
            (tmp_path / name.replace(".", f"{split}.")).write_text("older curate\n")
    first = write_export(rows("one"), tmp_path / name)
    before = seen()
    assert before and b"older curate" not in b"".join(before.values())
    assert {s: i["sha256"] for s, i in write_export(rows("one"), tmp_path / name).items()} == \
        {s: i["sha256"] for s, i in first.items()}

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "_write_file" if name != "folder" else "_save_datasets", fail)
    with pytest.raises(CurateError, match=r"cannot write the export \(No space left on device\); nothing was changed"):
        write_export(rows("two"), tmp_path / name)
    assert seen() == before and not list(tmp_path.glob(".*.versions/partial-*"))
    monkeypatch.undo()
    write_export(rows("three", ("train", "test")), tmp_path / name)  # no calibration split this time
    after = seen()
    assert b" three train" in b"".join(after.values()) and not [p for p in after if "calibration" in p]
    assert all(not p.name.startswith(".") or p.name.endswith(".versions") for p in tmp_path.iterdir())


def test_an_export_never_replaces_a_folder_that_is_not_one(tmp_path):
    from curate.export import write_export

    rows = {"train": [{"prompt": "p", "chosen": " c", "rejected": " r"}]}
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "thesis.tex").write_text("mine")
    (tmp_path / "x.jsonl").mkdir()
    for out, why in (("data", "is not a `datasets` export"), ("x.jsonl", "a folder, not a file")):
        with pytest.raises(CurateError, match=why):
            write_export(rows, tmp_path / out)
    assert (tmp_path / "data" / "thesis.tex").read_text() == "mine"
    write_export(rows, tmp_path / "empty")  # a new name, then the same export again: replaced
    write_export(rows, tmp_path / "empty")
    assert (tmp_path / "empty" / "dataset_dict.json").exists()
