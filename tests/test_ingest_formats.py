"""Every layout and file format that ingest understands, checked on what lands in the store."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from curate import ingest_files, project_status
from curate.errors import InputError
from curate.ingest import readers
from curate.ingest.layouts import CHOICES, LAYOUTS, detect_layout
from curate.ingest.values import RowProblem, blank
from curate.store.schema import Annotator, Completion, Judgment, Pair, Record

USER = {"role": "user", "content": "What is 2+2?"}


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _winners(project) -> dict[str, str]:
    """prompt -> text of the completion each pair judgment prefers."""
    with project.store.read() as conn:
        rows = conn.execute(select(Record.prompt, Judgment.choice, Pair.a_id, Pair.b_id)
                            .join(Pair, Pair.id == Judgment.pair_id).join(Record, Record.id == Pair.record_id)).all()
        texts = dict(conn.execute(select(Completion.id, Completion.text)).all())
    return {prompt: texts[a if choice == "a" else b] for prompt, choice, a, b in rows if choice in ("a", "b")}


def test_standard_preference_keeps_who_won_whatever_the_stored_order(sqlite_project, tmp_path):
    rows = [{"prompt": f"Question {i}", "chosen": f"good answer {i}", "rejected": f"bad answer {i}"}
            for i in range(20)]
    report = ingest_files(sqlite_project, [_write_jsonl(tmp_path / "p.jsonl", rows)])
    assert report.files[0].layout == "preference" and report.files[0].pairs == 20
    winners = _winners(sqlite_project)
    assert winners == {f"Question {i}": f"good answer {i}" for i in range(20)}
    with sqlite_project.store.read() as conn:
        choices = conn.scalars(select(Judgment.choice)).all()
    assert {"a", "b"} <= set(choices)  # id order, not the file's order: position carries no label


def test_conversational_preference_and_implicit_prompt(sqlite_project, tmp_path):
    conv = [{"prompt": [USER], "chosen": [{"role": "assistant", "content": "4"}],
             "rejected": [{"role": "assistant", "content": "5"}]}]
    implicit = [{"chosen": [USER, {"role": "assistant", "content": "Four."}],
                 "rejected": [USER, {"role": "assistant", "content": "Fish."}]}]
    report = ingest_files(sqlite_project, [_write_jsonl(tmp_path / "c.jsonl", conv),
                                           _write_jsonl(tmp_path / "i.jsonl", implicit)])
    assert [f.layout for f in report.files] == ["preference", "implicit-preference"]
    assert report.files[1].records == 0  # the same prompt messages: one record
    with sqlite_project.store.read() as conn:
        record = conn.execute(select(Record)).one()
        assert record.messages == [USER] and record.prompt == "What is 2+2?"
        assert sorted(conn.scalars(select(Completion.text))) == ["4", "5", "Fish.", "Four."]
    assert sorted(_winners(sqlite_project).values()) in (["4"], ["Four."])


def test_implicit_plain_text_splits_at_shared_words(sqlite_project, tmp_path):
    rows = [{"chosen": "Tell me a joke. Why did the chicken cross?", "rejected": "Tell me a joke. No."}]
    ingest_files(sqlite_project, [_write_jsonl(tmp_path / "i.jsonl", rows)])
    with sqlite_project.store.read() as conn:
        assert conn.scalar(select(Record.prompt)) == "Tell me a joke."
        assert sorted(conn.scalars(select(Completion.text))) == ["No.", "Why did the chicken cross?"]


def test_unpaired_sft_chat_and_prompt_only(sqlite_project, tmp_path):
    kto = [{"prompt": "p1", "completion": "nice", "label": True},
           {"prompt": "p1", "completion": "rude", "label": False}]
    sft = [{"prompt": "p2", "completion": "c2"}]
    chat = [{"messages": [USER, {"role": "assistant", "content": "4"}]}]
    prompts = [{"prompt": "p3"}, {"prompt": "p4"}]
    paths = [_write_jsonl(tmp_path / f"{n}.jsonl", rows)
             for n, rows in (("kto", kto), ("sft", sft), ("chat", chat), ("prompts", prompts))]
    report = ingest_files(sqlite_project, paths)
    assert [f.layout for f in report.files] == ["unpaired-preference", "prompt-completion", "chat", "prompt-only"]
    status = project_status(sqlite_project)
    assert (status["records"], status["completions"], status["pairs"]) == (5, 4, 0)
    with sqlite_project.store.read() as conn:
        ratings = dict(conn.execute(select(Completion.text, Judgment.label)
                                    .join(Judgment, Judgment.completion_id == Completion.id)).all())
    assert ratings == {"nice": True, "rude": False}


def test_map_with_label_values_and_annotator_columns_from_csv(sqlite_project, tmp_path):
    path = tmp_path / "judged.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["instruction", "input", "output_1", "output_2", "rater_x", "rater_y"])
        writer.writerow(["Translate", "chat", "cat", "dog", "1", "1"])
        writer.writerow(["Translate", "Hund", "dog", "hound", "2", "0"])
    report = ingest_files(sqlite_project, [path], mapping="prompt=instruction+input,a=output_1,b=output_2,"
                          "label=rater_x+rater_y", label_values="1=a,2=b,0=tie")
    assert report.files[0].judgments == {"crowd": 4}
    with sqlite_project.store.read() as conn:
        assert sorted(conn.scalars(select(Record.prompt))) == ["Translate\n\nHund", "Translate\n\nchat"]
        assert sorted(conn.scalars(select(Annotator.name))) == ["judged:rater_x", "judged:rater_y"]
        ties = conn.scalars(select(Judgment.choice).where(Judgment.choice == "tie")).all()
    assert len(ties) == 1
    assert _winners(sqlite_project) in ({"Translate\n\nchat": "cat", "Translate\n\nHund": "hound"},)


def test_parquet_and_datasets_folder(sqlite_project, tmp_path):
    import datasets

    rows = [{"prompt": f"q{i}", "chosen": f"yes {i}", "rejected": f"no {i}"} for i in range(10)]
    extra = {"prompt": "q99", "chosen": "y", "rejected": "n"}
    datasets.Dataset.from_list(rows).to_parquet(tmp_path / "d.parquet")
    splits = {"train": datasets.Dataset.from_list(rows[:6]), "test": datasets.Dataset.from_list([*rows[6:], extra])}
    datasets.DatasetDict(splits).save_to_disk(tmp_path / "hf")
    report = ingest_files(sqlite_project, [tmp_path / "d.parquet", tmp_path / "hf"])
    assert [(f.file_format, f.pairs, f.pairs_present) for f in report.files] == [("parquet", 10, 0), ("hf", 1, 10)]


def test_rows_repeated_in_a_file_are_counted_once(sqlite_project, tmp_path):
    rows = [{"prompt": "q", "chosen": "a", "rejected": "b"}] * 3 + [{"prompt": "q", "chosen": "a", "rejected": "c"}]
    report = ingest_files(sqlite_project, [_write_jsonl(tmp_path / "d.jsonl", rows)])
    assert (report.files[0].duplicate_rows, report.files[0].pairs, report.files[0].completions) == (2, 2, 3)


def test_source_row_ids_keep_repeated_comparisons_apart(sqlite_project, tmp_path):
    rows = [{"id": i, "q": "q", "x": "a", "y": "b", "w": "a"} for i in (1, 2)]
    report = ingest_files(sqlite_project, [_write_jsonl(tmp_path / "d.jsonl", rows)],
                          mapping="id=id,prompt=q,a=x,b=y,label=w")
    assert report.files[0].pairs == 2 and report.files[0].duplicate_rows == 0


BAD_MAPS = [("prompt=q,a=o", None, "both a and b"), ("completion=o", None, "a prompt column is needed"),
            ("prompt=q,label=o", None, "label needs"), ("prompt", None, "is not ROLE=COLUMN"),
            ("prompt=q,prompt=o", None, "given twice"),
            ("prompt=q,a=o+q,b=o", None, "only prompt, label and score take"),
            ("prompt=q,a=o,b=o,label=o", "1=winner", "must be VALUE=ONE_OF"),
            ("prompt=q,completion=o", "1=good", "--label-values needs a label column"),
            ("prompt=q,a=o,b=o", None, "column 'o' is given to both a and b"),
            ("prompt=o,completion=o", None, "column 'o' is given to both prompt and completion")]


@pytest.mark.parametrize(("spec", "values", "message"), BAD_MAPS)
def test_bad_map_specs_are_errors(sqlite_project, tmp_path, spec, values, message):
    path = _write_jsonl(tmp_path / "d.jsonl", [{"q": "x", "o": "y"}])
    with pytest.raises(InputError, match=message):
        ingest_files(sqlite_project, [path], mapping=spec, label_values=values)


# One example row per layout: the contract every layout honours.
LAYOUT_ROWS = {
    "ukp": {"id": "x", "topic": "t_s", "title": "T", "a1": "one", "a2": "two", "gold": "a1",
            "workers": [{"worker": "w", "value": "a2", "reason": "r"}]},
    "pandalm": {"idx": 1, "instruction": "do", "input": "", "response1": "a", "response2": "b", "annotator1": 0},
    "arena": {"question_id": "q1", "model_a": "m1", "model_b": "m2", "winner": "tie (bothbad)", "judge": "u1",
              "conversation_a": [USER, {"role": "assistant", "content": "4"}],
              "conversation_b": [USER, {"role": "assistant", "content": "5"}]},
    "ultrafeedback": {"instruction": "p", "completions": [{"model": "m1", "response": "a", "overall_score": 7},
                                                          {"model": "m2", "response": "b", "overall_score": 3}]},
    "ultrafeedback-binarized": {"prompt": "What is 2+2?", "score_chosen": 9.0, "score_rejected": 2.0,
                                "chosen": [USER, {"role": "assistant", "content": "4"}],
                                "rejected": [USER, {"role": "assistant", "content": "5"}]},
    "preference": {"prompt": "p", "chosen": "a", "rejected": "b"},
    "implicit-preference": {"chosen": "Q? yes", "rejected": "Q? no"},
    "unpaired-preference": {"prompt": "p", "completion": "c", "label": False},
    "ranked": {"prompt": "p", "responses": ["a", "b", "c"], "ratings": [1, 3, None]},
    "prompt-completion": {"prompt": "p", "completion": "c"},
    "chat": {"messages": [USER, {"role": "assistant", "content": "4"}]},
    "prompt-only": {"prompt": "p"},
}


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.name)
def test_layout_contract(layout):
    row = LAYOUT_ROWS[layout.name]
    assert detect_layout(set(row), "f") is layout
    assert set(layout.required_columns()) <= {c for names in layout.roles(set(row)).values() for c in names} <= set(row)
    parsed = layout.parse(row)
    assert parsed.prompt.text.strip()
    assert all(i != j and {i, j} <= set(range(len(parsed.completions))) for i, j in parsed.pair_positions)
    for judged in parsed.judgments:  # a choice on one of the row's pairs, or a rating of one of its completions
        assert (judged.choice in CHOICES) != (judged.label is not None or judged.score is not None)
        if judged.choice:
            assert judged.pair < len(parsed.pair_positions)
        else:
            assert judged.completion < len(parsed.completions)
    for key in layout.required_columns():
        with pytest.raises(RowProblem, match=f"missing field '{key}'"):
            layout.parse({k: v for k, v in row.items() if k != key})


def test_whole_number_float_labels_match_integer_values(sqlite_project, tmp_path):
    path = _write_jsonl(tmp_path / "d.jsonl", [{"q": "x", "c": "y", "s": 1.0}, {"q": "x", "c": "z", "s": 0.0}])
    report = ingest_files(sqlite_project, [path], mapping="prompt=q,completion=c,label=s", label_values="1=good,0=bad")
    assert report.files[0].judgments == {"dataset": 2}


def test_bom_jsonl_and_long_csv_cells(sqlite_project, tmp_path):
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps({"prompt": "p", "completion": "c"}).encode())
    long = "word " * 60000
    with open(tmp_path / "long.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["prompt", "completion"], ["p", long]])
    report = ingest_files(sqlite_project, [tmp_path / "bom.jsonl", tmp_path / "long.csv"])
    assert [f.completions for f in report.files] == [1, 1]


def test_row_ids_are_kept_exactly(sqlite_project, tmp_path):
    rows = [{"id": i, "q": "q", "x": "a", "y": "b"} for i in ("A", "a", 1, "1")]
    report = ingest_files(sqlite_project, [_write_jsonl(tmp_path / "d.jsonl", rows)], mapping="id=id,prompt=q,a=x,b=y")
    assert report.files[0].pairs == 3  # "A" and "a" differ; 1 and "1" are the same id in text


def test_optional_prompt_part_may_be_null(sqlite_project, tmp_path):
    rows = [{"instruction": "Say hi", "input": None, "output": "hi"}]
    ingest_files(sqlite_project, [_write_jsonl(tmp_path / "d.jsonl", rows)], mapping="prompt=instruction+input,"
                 "completion=output")
    with sqlite_project.store.read() as conn:
        assert conn.scalar(select(Record.prompt)) == "Say hi"


@pytest.mark.parametrize("chunk", [1 << 20, 3], ids=["whole-lines", "lines-cut-in-chunks"])
def test_csv_with_old_mac_line_ends_reads_its_rows_at_their_lines(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(readers, "_CHUNK", chunk)  # a \r\n cut between two chunks is still one line end
    path = tmp_path / "mac.csv"
    path.write_bytes(b'prompt,completion\rp1,c1\rp2,"two\rlines"\r\np3,c3\r\r"p4",c4')
    rows = [(where, row) for where, row, _ in readers.read_rows(readers.Source(path, "csv"))]
    assert rows == [(2, {"prompt": "p1", "completion": "c1"}), (3, {"prompt": "p2", "completion": "two\rlines"}),
                    (5, {"prompt": "p3", "completion": "c3"}), (7, {"prompt": "p4", "completion": "c4"})]


def test_csv_with_old_mac_line_ends_is_ingested(sqlite_project, tmp_path):
    path = tmp_path / "mac.csv"
    path.write_bytes(b"prompt,chosen,rejected\rSay hi,Hi!,Go away.\rSay bye,Bye!,No.\r")
    report = ingest_files(sqlite_project, [path])
    assert report.files[0].pairs == 2
    assert _winners(sqlite_project) == {"Say hi": "Hi!", "Say bye": "Bye!"}


@pytest.mark.parametrize(("text", "empty"), [
    ("\U0001fae8", False),  # an emoji newer than Python's Unicode tables (unassigned there)
    ("\ue000", False),  # private use: a font may draw it
    ("\u0301", False),  # a combining mark alone still shows
    (" \u200b\u2060\ufeff\u00ad\u3000", True),  # whitespace and format characters
    ("\u034f\ufe0f\U000e0041\u3164\u2800", True),  # default-ignorable code points, the braille blank
])
def test_blank_means_nothing_visible(text, empty):
    assert blank(text) is empty


def test_a_completion_of_one_new_emoji_is_not_empty(sqlite_project, tmp_path):
    path = _write_jsonl(tmp_path / "d.jsonl", [{"prompt": "React", "completion": "\U0001fae8"}])
    assert ingest_files(sqlite_project, [path]).files[0].completions == 1
