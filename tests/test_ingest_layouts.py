"""The layouts ML teams hold, as new users bring them: UltraFeedback (raw and binarized), a prompt with N rated
responses, Chatbot Arena battles, files with extra columns, `datasets` folders with splits; each checked on what
lands in the store, on `--dry-run`, and on the bad-input rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from curate import ingest_files
from curate.errors import InputError
from curate.ingest.ranked import derive_pairs
from curate.store import pool
from curate.store.schema import Completion, Judgment, Pair, Record

USER = "How do I boil an egg?"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def ultrafeedback_rows(n: int = 3) -> list[dict]:
    """openbmb/UltraFeedback's raw shape: four completions per instruction with the judge's scores."""
    rows = []
    for i in range(n):
        completions = []
        for k, (model, fine) in enumerate([("llama-2-7b", 2.5), ("gpt-4", 4.75), ("falcon-40b", 3.0),
                                           ("wizardlm-13b", 3.0)]):
            completions.append({
                "model": model, "response": f"Answer {k} to question {i}.", "fine-grained_score": fine,
                "overall_score": 10 - k, "principle": "helpfulness", "custom_system_prompt": "Be helpful.",
                "critique": f"Critique {k}.",
                "annotations": {"helpfulness": {"Rating": str(int(fine)), "Rationale": "ok"}}})
        rows.append({"source": "evol_instruct" if i % 2 else "sharegpt", "instruction": f"Question {i}?",
                     "models": [c["model"] for c in completions], "completions": completions,
                     "correct_answers": ["None"], "incorrect_answers": ["None"]})
    return rows


def scores_by_text(project) -> dict[str, list[float]]:
    with project.store.read() as conn:
        rows = conn.execute(select(Completion.text, Judgment.meta).join(Judgment, Judgment.completion_id ==
                                                                        Completion.id)
                            .where(Judgment.kind == "rating")).all()
    out: dict[str, list[float]] = {}
    for text, meta in rows:
        out.setdefault(text, []).append(meta["score"])
    return out


def pair_winners(project) -> dict[frozenset[str], str]:
    """{the pair's two texts} -> the text its dataset judgment prefers (or tie / both_bad)."""
    with project.store.read() as conn:
        texts = dict(conn.execute(select(Completion.id, Completion.text)).all())
        rows = conn.execute(select(Pair.a_id, Pair.b_id, Judgment.choice).join(Judgment, Judgment.pair_id == Pair.id)
                            .where(Judgment.kind == "pair")).all()
    return {frozenset((texts[a], texts[b])): {"a": texts[a], "b": texts[b]}.get(c, c) for a, b, c in rows}


def test_ultrafeedback_raw_stores_each_completion_once_with_its_score_and_the_best_against_each(project, tmp_path):
    """On SQLite and PostgreSQL: the same ids, scores, labels and metadata."""
    path = write_jsonl(tmp_path / "uf.jsonl", ultrafeedback_rows())
    report = ingest_files(project, [path]).files[0]
    assert report.layout == "ultrafeedback"
    assert (report.records, report.completions, report.pairs) == (3, 12, 9)  # the best (gpt-4) against the 3 others
    assert dict(report.judgments) == {"dataset": 12 + 9}  # a rating per completion, a label per pair
    scores = scores_by_text(project)
    assert scores["Answer 1 to question 0."] == [4.75] and len(scores) == 12
    winners = pair_winners(project)
    assert winners[frozenset(("Answer 1 to question 2.", "Answer 0 to question 2."))] == "Answer 1 to question 2."
    with project.store.read() as conn:
        models = dict(conn.execute(select(Completion.text, Completion.model)).all())
        rating = conn.scalars(select(Judgment.meta).where(Judgment.kind == "rating")).first()
        meta = pool.record_meta(conn)
    assert models["Answer 1 to question 0."] == "gpt-4"
    assert rating["field"] == "fine-grained_score" and rating["critique"].startswith("Critique")
    assert {m["source"] for m in meta.values()} == {"evol_instruct", "sharegpt"}  # extra columns kept
    assert "completions" not in next(iter(meta.values()))


def test_all_pairs_label_equal_scores_a_tie(sqlite_project, tmp_path):
    path = write_jsonl(tmp_path / "uf.jsonl", ultrafeedback_rows())
    report = ingest_files(sqlite_project, [path], pair_rule="all").files[0]
    assert report.pairs == 18 and dict(report.judgments) == {"dataset": 12 + 18}  # 4 completions: 6 pairs each
    winners = pair_winners(sqlite_project)
    assert winners[frozenset(("Answer 2 to question 2.", "Answer 3 to question 2."))] == "tie"  # 3.0 and 3.0
    assert winners[frozenset(("Answer 0 to question 2.", "Answer 2 to question 2."))] == "Answer 2 to question 2."


@pytest.mark.parametrize(("rule", "pairs", "winner_always_best"), [("best-vs-each", 9, True),
                                                                    ("best-vs-worst", 3, True),
                                                                    ("best-vs-random", 3, True)])
def test_pair_rules_take_the_documented_pairs(sqlite_project, tmp_path, rule, pairs, winner_always_best):
    path = write_jsonl(tmp_path / "uf.jsonl", ultrafeedback_rows())
    report = ingest_files(sqlite_project, [path], pair_rule=rule).files[0]
    assert report.pairs == pairs and report.completions == 12
    winners = pair_winners(sqlite_project)
    assert all(w.startswith("Answer 1 ") for w in winners.values()) == winner_always_best  # gpt-4 scored 4.75
    if rule == "best-vs-worst":
        assert all(any(t.startswith("Answer 0 ") for t in texts) for texts in winners)  # 2.5 is the lowest


def test_best_vs_random_is_the_same_pair_every_time():
    firsts = {tuple(derive_pairs([1.0, 5.0, 2.0, 3.0], "best-vs-random", key=f"prompt {i}")[0]) for i in range(40)}
    assert all(pair[0] == 1 for pair in firsts) and len(firsts) == 3  # the best against each other, by prompt
    assert derive_pairs([1.0, 5.0, 2.0], "best-vs-random", key="p") == derive_pairs([1.0, 5.0, 2.0],
                                                                                    "best-vs-random", key="p")


def test_rank_n_prompts_go_to_experts_whole_by_the_ranking_route(cli, tmp_path):
    from curate import open_project
    from curate.store import judgments

    proj = tmp_path / "proj"
    assert cli("init", str(proj))[0] == 0
    path = write_jsonl(tmp_path / "uf.jsonl", ultrafeedback_rows(12))
    assert cli("ingest", str(path), "--project", str(proj))[0] == 0
    code, out, err = cli("select", "--budget", "4", "--strategy", "random", "--route", "ranking", "--project",
                         str(proj), "--json")
    assert code == 0, err
    assert json.loads(out)["routes"] == {"ranking": 4}
    with open_project(proj) as project, project.store.read() as conn:
        kinds = {i.kind for i in judgments.round_items(conn) if i.arm in ("strategy", "random")}
    assert kinds == {"ranking"}  # each orders all 4 completions of its prompt, stored once


def test_flat_responses_with_ratings_is_rank_n_not_prompt_only(sqlite_project, tmp_path):
    rows = [{"prompt": f"Q{i}", "responses": [f"r{i}a", f"r{i}b", f"r{i}c"], "ratings": [1, 5, None],
             "subset": "math" if i < 3 else "code"} for i in range(5)]
    report = ingest_files(sqlite_project, [write_jsonl(tmp_path / "r.jsonl", rows)]).files[0]
    assert report.layout == "ranked"
    assert (report.records, report.completions, report.pairs) == (5, 15, 10)  # the best against the two others
    assert dict(report.judgments) == {"dataset": 5 * 2 + 5 * 1}  # two scored of three; one pair with both scores
    assert pair_winners(sqlite_project)[frozenset(("r0a", "r0b"))] == "r0b"
    with sqlite_project.store.read() as conn:
        assert {m["subset"] for m in pool.pair_meta(conn).values()} == {"math", "code"}


def test_a_mapped_list_column_with_a_score_field(sqlite_project, tmp_path):
    rows = [{"question": "Q", "answers": [{"text": "one", "stars": 2}, {"text": "two", "stars": 4}]}]
    path = write_jsonl(tmp_path / "m.jsonl", rows)
    report = ingest_files(sqlite_project, [path], mapping="prompt=question,completions=answers,score=stars").files[0]
    assert (report.completions, report.pairs, dict(report.judgments)) == (2, 1, {"dataset": 3})
    assert pair_winners(sqlite_project) == {frozenset(("one", "two")): "two"}


def test_ultrafeedback_binarized_splits_the_repeated_prompt_turn(sqlite_project, tmp_path):
    rows = [{"prompt": f"Question {i}?", "prompt_id": f"id{i}",
             "chosen": [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": f"Good {i}"}],
             "rejected": [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": f"Bad {i}"}],
             "messages": [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": f"Good {i}"}],
             "score_chosen": 8.0, "score_rejected": 3.5} for i in range(4)]
    report = ingest_files(sqlite_project, [write_jsonl(tmp_path / "ufb.jsonl", rows)]).files[0]
    assert report.layout == "ultrafeedback-binarized"
    assert (report.records, report.completions, report.pairs, dict(report.judgments)) == (4, 8, 4, {"dataset": 12})
    assert set(pair_winners(sqlite_project).values()) == {f"Good {i}" for i in range(4)}
    with sqlite_project.store.read() as conn:
        record = conn.execute(select(Record.prompt, Record.messages, Record.meta)).first()
    assert record.messages == [{"role": "user", "content": record.prompt}]
    assert record.meta == {"prompt_id": record.meta["prompt_id"]}  # `messages` repeats chosen: not kept twice
    assert scores_by_text(sqlite_project)["Good 0"] == [8.0]


def test_a_conversation_that_does_not_repeat_the_prompt_is_refused(sqlite_project, tmp_path):
    rows = [{"prompt": "Question?", "chosen": [{"role": "user", "content": "Other?"},
                                                {"role": "assistant", "content": "a"}],
             "rejected": [{"role": "user", "content": "Other?"}, {"role": "assistant", "content": "b"}]}]
    with pytest.raises(InputError, match=r"p.jsonl:1: 'chosen' and 'rejected' are conversations whose shared user "
                                         r"turn is not 'prompt'"):
        ingest_files(sqlite_project, [write_jsonl(tmp_path / "p.jsonl", rows)])


def arena_rows() -> list[dict]:
    winners = ["model_a", "model_b", "tie", "tie (bothbad)", "model_b"]
    return [{"question_id": f"q{i}", "model_a": "vicuna-13b", "model_b": "koala-13b", "winner": w,
             "judge": f"arena_user_{i % 2}", "turn": 1, "anony": True, "language": "English" if i else "German",
             "tstamp": 1682351591.1322,
             "conversation_a": [{"role": "user", "content": f"Prompt {i}"}, {"role": "assistant", "content": f"A{i}"}],
             "conversation_b": [{"role": "user", "content": f"Prompt {i}"}, {"role": "assistant", "content": f"B{i}"}]}
            for i, w in enumerate(winners)]


def test_arena_labels_follow_winner_and_models_stay_with_completions(project, tmp_path):
    report = ingest_files(project, [write_jsonl(tmp_path / "arena.jsonl", arena_rows())]).files[0]
    assert report.layout == "arena" and report.pairs == 5 and dict(report.judgments) == {"crowd": 5}
    winners = pair_winners(project)
    expected = {"model_a": "A{}", "model_b": "B{}", "tie": "tie", "tie (bothbad)": "both_bad"}
    assert winners == {frozenset((f"A{i}", f"B{i}")): expected[r["winner"]].format(i)
                       for i, r in enumerate(arena_rows())}
    with project.store.read() as conn:
        models = dict(conn.execute(select(Completion.text, Completion.model)).all())
        meta = pool.pair_meta(conn)
        annotators = conn.scalar(select(func.count(func.distinct(Judgment.annotator_id))))
    assert models["A0"] == "vicuna-13b" and models["B0"] == "koala-13b"
    assert {m["language"] for m in meta.values()} == {"English", "German"}
    assert all("model_a" not in m and "winner" not in m for m in meta.values())  # roles, not metadata
    assert annotators == 2


def test_arena_with_an_unknown_winner_is_a_row_problem(sqlite_project, tmp_path):
    rows = arena_rows()
    rows[2]["winner"] = "model_c"
    with pytest.raises(InputError, match=r"arena.jsonl:3: unknown label value 'model_c' in field 'winner'"):
        ingest_files(sqlite_project, [write_jsonl(tmp_path / "arena.jsonl", rows)])
    with sqlite_project.store.read() as conn:
        assert pool.pairs(conn) == []


def test_gold_column_by_map_and_extra_columns_kept_per_pair(sqlite_project, tmp_path):
    rows = [{"q": "Q", "x": f"one {i}", "y": f"two {i}", "expert": "y" if i % 2 else "x", "worker": "x",
             "subset": f"s{i % 3}"} for i in range(6)]
    path = write_jsonl(tmp_path / "g.jsonl", rows)
    report = ingest_files(sqlite_project, [path], mapping="prompt=q,a=x,b=y,gold=expert,label=worker",
                          label_values="x=a,y=b").files[0]
    assert dict(report.judgments) == {"gold": 6, "dataset": 6}
    with sqlite_project.store.read() as conn:
        meta = pool.pair_meta(conn)
    assert sorted(m["subset"] for m in meta.values()) == ["s0", "s0", "s1", "s1", "s2", "s2"]  # one record, own meta


def test_a_datasets_folder_keeps_each_rows_split(sqlite_project, tmp_path):
    from datasets import Dataset, DatasetDict

    def part(name: str, n: int) -> Dataset:
        return Dataset.from_list([{"prompt": f"{name} {i}", "chosen": "yes", "rejected": "no"} for i in range(n)])

    DatasetDict({"train": part("train", 6), "test": part("test", 3)}).save_to_disk(str(tmp_path / "ds"))
    report = ingest_files(sqlite_project, [tmp_path / "ds"]).files[0]
    assert report.pairs == 9
    with sqlite_project.store.read() as conn:
        splits = sorted(m["split"] for m in pool.pair_meta(conn).values())
    assert splits == ["test"] * 3 + ["train"] * 6


def test_a_datasets_folders_test_split_becomes_the_frozen_test_slice(cli, tmp_path):
    from conftest import set_config
    from datasets import Dataset, DatasetDict

    def part(name: str, n: int) -> Dataset:
        return Dataset.from_list([{"prompt": f"{name} question {i}", "chosen": f"good {name} {i}",
                                   "rejected": f"bad {name} {i}"} for i in range(n)])

    DatasetDict({"train": part("train", 30), "test": part("test", 5)}).save_to_disk(str(tmp_path / "ds"))
    proj = tmp_path / "proj"
    assert cli("init", str(proj))[0] == 0
    set_config(proj, "select", test_split="test")
    assert cli("ingest", str(tmp_path / "ds"), "--project", str(proj))[0] == 0
    code, out, err = cli("select", "--budget", "4", "--strategy", "random", "--project", str(proj), "--json")
    assert code == 0, err
    assert json.loads(out)["reserved"]["test"] == 5
    from curate import open_project
    from curate.store import judgments, rounds

    def state() -> tuple[list[str], list[str]]:
        """The prompts of the test slice's pairs and of every round item's pair."""
        with open_project(proj) as project, project.store.read() as conn:
            test = {p for p, name in rounds.slices(conn).items() if name == "test"}
            prompts = dict(conn.execute(select(Pair.id, Record.prompt).join(Record, Record.id == Pair.record_id)
                                        ).all())
            items = [i.pair_id for i in judgments.round_items(conn)]
        return sorted(prompts[p] for p in test), [prompts[p] for p in items if p]

    test, chosen = state()
    assert test == sorted(f"test question {i}" for i in range(5))
    # a second folder after the first round: its test split joins the test slice, never a training round
    DatasetDict({"train": part("later train", 10), "test": part("later test", 4)}).save_to_disk(str(tmp_path / "ds2"))
    assert cli("ingest", str(tmp_path / "ds2"), "--project", str(proj))[0] == 0
    code, out, err = cli("select", "--budget", "34", "--strategy", "random", "--project", str(proj), "--json")
    assert code == 0, err
    assert json.loads(out)["reserved"] == {"test": 4}
    test, chosen = state()
    assert test == sorted([f"test question {i}" for i in range(5)] + [f"later test question {i}" for i in range(4)])
    assert chosen and not [p for p in chosen if "test question" in p]
    from curate.report.data import report_data

    with open_project(proj) as project:  # the report shows the pool and each round's choices by split
        (split,) = [g for g in report_data(project)["metadata"] if g["key"] == "split"]
    assert {v["value"]: v["pool"] for v in split["values"]} == {"train": 40, "test": 9}
    by_value = {v["value"]: v["chosen"] for v in split["values"]}
    assert by_value["test"] == [0, 0] and sum(by_value["train"]) == len(chosen)


def test_an_unused_list_column_is_noted_not_dropped_silently(cli, tmp_path):
    rows = [{"prompt": "Q", "candidates": ["one", "two"]}]
    path = write_jsonl(tmp_path / "l.jsonl", rows)
    cli("init", str(tmp_path / "proj"))
    code, out, _ = cli("ingest", str(path), "--project", str(tmp_path / "proj"))
    assert code == 0
    assert "column 'candidates' holds a list of texts, kept as metadata" in out and "completions=candidates" in out


def test_dry_run_shows_the_mapping_and_first_row_and_writes_nothing(cli, tmp_path):
    path = write_jsonl(tmp_path / "uf.jsonl", ultrafeedback_rows(2))
    code, out, err = cli("ingest", str(path), "--dry-run", "--pairs", "best-vs-worst", "--project",
                         str(tmp_path / "none"))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{path}: layout ultrafeedback (jsonl), 2 rows, 0 bad"
    assert "  prompt       <- instruction" in lines and "  completions  <- completions" in lines
    assert "  metadata     <- source, models, correct_answers, incorrect_answers" in lines
    assert "  completion 2: Answer 1 to question 0.  [model gpt-4, score 4.75]" in lines
    assert "  pair 2 vs 1: 2 wins (dataset)" in lines
    assert "in the file: 2 prompts, 8 completions, 2 pairs; judgments: 2 pair (dataset), 8 rating (dataset)" in lines
    assert not (tmp_path / "none").exists()


def test_dry_run_refuses_a_bad_row_like_ingest(cli, tmp_path):
    rows = ultrafeedback_rows(2)
    rows[1]["completions"][2]["fine-grained_score"] = "N/A"
    code, out, err = cli("ingest", str(write_jsonl(tmp_path / "uf.jsonl", rows)), "--dry-run")
    assert code == 1 and not out
    assert err.strip().splitlines() == [
        f"error: {tmp_path / 'uf.jsonl'}:2: field 'completions' item 3 'fine-grained_score' is 'N/A', expected a "
        "number; nothing would be ingested (--skip-bad ingests the good rows)"]


@pytest.mark.parametrize(("rows", "problem"), [
    ([{"prompt": "Q", "responses": [], "ratings": []}], "field 'responses' must be a non-empty list"),
    ([{"prompt": "Q", "responses": ["a", "b"], "ratings": [1]}], "field 'ratings' must be a list of 2 scores"),
    ([{"prompt": "Q", "responses": ["a", 3]}], "field 'responses' item 2 must be text or an object with a text field"),
    ([{"prompt": "Q", "responses": ["a", "b"], "ratings": [1, float("nan")]}], "invalid JSON"),
    ([{"prompt": "Q", "responses": ["a", "b"], "ratings": [1, True]}], "item 2 is a boolean, expected a number"),
    ([{"instruction": "Q", "completions": [{"model": "m", "score": 1}]}], "has none of the text fields"),
    ([{"conversation_a": [{"role": "user", "content": "x"}], "conversation_b": [{"role": "user", "content": "y"}],
       "winner": "model_a"}], "share no leading messages"),
])
def test_bad_rows_of_new_layouts_are_one_line_and_write_nothing(cli, tmp_path, rows, problem):
    cli("init", str(tmp_path / "proj"))
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r, allow_nan=True) + "\n" for r in rows))
    code, _, err = cli("ingest", str(path), "--project", str(tmp_path / "proj"))
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "bad.jsonl:1: " in err and problem in err
    from curate import open_project

    with open_project(tmp_path / "proj") as project, project.store.read() as conn:
        assert conn.scalar(select(func.count()).select_from(Record)) == 0


def test_pairs_rule_on_a_layout_without_lists_is_refused(sqlite_project, tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "Q", "chosen": "a", "rejected": "b"}])
    with pytest.raises(InputError, match="--pairs applies to rank-N layouts"):
        ingest_files(sqlite_project, [path], pair_rule="best-vs-each")
    with pytest.raises(InputError, match="--pairs must be one of auto, all, best-vs-each"):
        ingest_files(sqlite_project, [write_jsonl(tmp_path / "uf.jsonl", ultrafeedback_rows(1))], pair_rule="top")


def test_a_text_given_twice_is_one_completion_and_conflicting_scores_label_nothing(sqlite_project, tmp_path):
    rows = [{"prompt": "Sky colour?", "responses": ["Blue.", "Red.", "Blue."], "ratings": [1, 5, 9]},
            {"prompt": "Grass colour?", "responses": ["Green.", "Red.", "Green."], "ratings": [7, 2, 7]}]
    report = ingest_files(sqlite_project, [write_jsonl(tmp_path / "d.jsonl", rows)]).files[0]
    assert report.completions == 4 and report.pairs == 2  # one pair per prompt: two distinct texts each
    assert pair_winners(sqlite_project) == {frozenset(("Green.", "Red.")): "Green."}  # the sky pair has no label
    assert scores_by_text(sqlite_project)["Blue."] in ([1.0, 9.0], [9.0, 1.0])  # both ratings kept
    assert any("different scores is kept once with both ratings" in n for n in report.notes)
    assert any(n.startswith("the same text given twice") for n in report.notes)


def test_score_fields_not_found_are_errors_or_notes_never_silent(sqlite_project, tmp_path):
    typo = [{"q": "Q", "answers": [{"text": "one", "overall_score": 8}, {"text": "two", "overall_score": 3}]}]
    with pytest.raises(InputError, match=r"t.jsonl:1: no completion in 'answers' has the score field 'overal_score' "
                                         r"\(fields: overall_score\)"):
        ingest_files(sqlite_project, [write_jsonl(tmp_path / "t.jsonl", typo)],
                     mapping="prompt=q,completions=answers,score=overal_score")
    unread = [{"prompt": "Q", "responses": [{"text": "one", "reward": 0.9}, {"text": "two", "reward": 0.1}]}]
    report = ingest_files(sqlite_project, [write_jsonl(tmp_path / "u.jsonl", unread)]).files[0]
    assert "completion fields reward are not read as scores (--map ...,score=FIELD reads one)" in report.notes
    partly = [{"instruction": "Q", "completions": [{"response": "one", "fine-grained_score": 4.0, "overall_score": 8},
                                                   {"response": "two", "overall_score": 2}]}]
    report = ingest_files(sqlite_project, [write_jsonl(tmp_path / "p.jsonl", partly)]).files[0]
    assert any("a completion without 'fine-grained_score' is unscored" in n for n in report.notes)


def test_metadata_never_makes_a_row_bad_and_says_what_it_changed(project, tmp_path):
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"prompt": ["P1", "P2"], "chosen": ["a", "b"], "rejected": ["c", "d"],
                      "created": [datetime.datetime(2024, 5, 1, 12, 0), datetime.datetime(2024, 5, 2, 8, 30)],
                      "toxicity": [0.25, float("nan")], "blob": [b"\x00\x01", b"\x02"]})
    pq.write_table(table, tmp_path / "m.parquet")
    report = ingest_files(project, [tmp_path / "m.parquet"]).files[0]
    assert report.pairs == 2
    with project.store.read() as conn:
        metas = sorted(pool.pair_meta(conn).values(), key=lambda m: m["created"])
    assert metas == [{"created": "2024-05-01T12:00:00", "toxicity": 0.25},
                     {"created": "2024-05-02T08:30:00", "toxicity": None}]
    assert report.notes["column 'toxicity' nan kept as null in the metadata"] == [f"{tmp_path / 'm.parquet'}:row 2"]
    assert len(report.notes["column 'blob' is bytes: not kept in the metadata"]) == 2


def test_a_csv_cell_is_not_a_list_and_says_so(sqlite_project, tmp_path):
    (tmp_path / "r.csv").write_text('prompt,responses,ratings\nQ,"[""a"", ""b""]","[1, 2]"\n')
    with pytest.raises(InputError, match=r"r.csv:2: wrong list shape: field 'responses' is text, not a list of "
                                         r"completions \(a CSV cell cannot hold a list: use JSON Lines or Parquet\)"):
        ingest_files(sqlite_project, [tmp_path / "r.csv"])


def test_dry_run_counts_what_ingest_adds_and_lists_bad_rows_with_skip_bad(cli, tmp_path, sqlite_project):
    rows = [{"prompt": "Q", "responses": ["a", "b"], "ratings": [1, 2]}] * 2 + [
        {"prompt": "Q2", "responses": ["a"], "ratings": ["x"]}, {"prompt": "Q3", "responses": "a"}]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    code, out, err = cli("ingest", str(path), "--dry-run", "--skip-bad")
    assert code == 0, err
    assert "in the file: 1 prompts, 2 completions, 1 pairs; judgments: 1 pair (dataset), 2 rating (dataset)" in out
    assert f"bad row (--skip-bad would leave it out): {path}:3: field 'ratings' item 1 is 'x', expected a number" in out
    assert f"bad row (--skip-bad would leave it out): {path}:4: wrong list shape" in out
    report = ingest_files(sqlite_project, [path], skip_bad=True).files[0]
    assert (report.pairs, sum(report.judgments.values())) == (1, 3)
    code, out, err = cli("ingest", str(path), "--dry-run")
    assert code == 1 and err.startswith(f"error: {path}:3: ") and "(and 1 more bad rows); nothing would be" in err


def test_skip_bad_never_passes_a_file_with_no_good_row(sqlite_project, tmp_path):
    path = write_jsonl(tmp_path / "all-bad.jsonl", [{"prompt": "Q", "chosen": "a", "rejected": None}] * 2)
    with pytest.raises(InputError, match=r"all-bad.jsonl: every row is bad \(2; the first: .*all-bad.jsonl:1: field "
                                         r"'rejected' is null\); nothing was ingested"):
        ingest_files(sqlite_project, [path], skip_bad=True)
    assert not (sqlite_project.root / "rejects").exists() or not list((sqlite_project.root / "rejects").iterdir())


def test_the_layout_error_suggests_completions_for_a_list_column(sqlite_project, tmp_path):
    rows = [{"question": "Q", "answers": [{"text": "a", "stars": 1}, {"text": "b", "stars": 2}]}]
    with pytest.raises(InputError, match=r"use --map, e.g. --map prompt=question,completions=answers$"):
        ingest_files(sqlite_project, [write_jsonl(tmp_path / "c.jsonl", rows)])
