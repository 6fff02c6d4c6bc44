"""The three real datasets of ../shared/data, through the CLI as a user runs it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from curate import open_project
from curate.rendering import transcript_turns
from curate.store.schema import Annotator, Completion, Judgment, Pair, Record


def _status(cli, proj: Path) -> dict:
    code, out, err = cli("status", "--project", proj, "--json")
    assert code == 0, err
    return json.loads(out)


def test_ukp_gives_every_pair_and_worker_vote(cli, tmp_path, shared_data):
    proj = tmp_path / "p"
    assert cli("init", proj)[0] == 0
    code, _out, err = cli("ingest", shared_data / "ukp-convarg1-dev.jsonl.gz", "--project", proj)
    assert code == 0, err
    status = _status(cli, proj)
    assert status["pairs"] == 8893
    assert status["records"] == 16  # one prompt per debate stance
    assert status["judgments_by_source"] == {"crowd": 44375, "gold": 8454}
    assert status["rounds"] == 0
    with open_project(proj) as project, project.store.read() as conn:
        workers = conn.scalar(select(func.count()).select_from(Annotator).where(Annotator.name.like("ukp:%")))
        assert workers == 3608
        reasons = conn.scalar(select(func.count()).select_from(Judgment).where(Judgment.reason.is_not(None)))
        assert reasons > 40000


def test_hh_splits_the_shared_prompt_and_keeps_who_won(cli, tmp_path, shared_data):
    proj = tmp_path / "p"
    cli("init", proj)
    path = shared_data / "hh-rlhf-harmless-test-dev.jsonl.gz"
    code, out, err = cli("ingest", path, "--project", proj)
    assert code == 0, err
    status = _status(cli, proj)
    assert status["pairs"] == 1155 and status["judgments_by_source"] == {"dataset": 1155}
    assert "empty completion kept" in out
    with gzip.open(path, "rt") as fh:
        first = json.loads(fh.readline())
    chosen = first["chosen"][first["chosen"].rindex("Assistant:") + len("Assistant:"):].strip()
    with open_project(proj) as project, project.store.read() as conn:
        record = conn.execute(select(Record).join(Completion, Completion.record_id == Record.id)
                              .where(Completion.text == chosen)).one()
        assert record.prompt.startswith("Human: ") and record.prompt.endswith("Assistant:")
        assert record.messages == transcript_turns(record.prompt) and record.messages[-1]["role"] == "user"
        multi_turn = sum(len(m or []) > 1 for m in conn.scalars(select(Record.messages)))
        pair = conn.execute(select(Pair).where(Pair.record_id == record.id)).one()
        choice = conn.scalar(select(Judgment.choice).where(Judgment.pair_id == pair.id))
        winner = conn.scalar(select(Completion.text).where(
            Completion.id == (pair.a_id if choice == "a" else pair.b_id)))
    assert winner == chosen
    assert 500 < multi_turn < 1155  # most hh prompts are several turns, which every model step now sees


def test_pandalm_gives_999_pairs_with_three_judgments_each(cli, tmp_path, shared_data):
    proj = tmp_path / "p"
    cli("init", proj)
    code, out, err = cli("ingest", shared_data / "pandalm-testset-v1.jsonl.gz", "--project", proj)
    assert code == 0, err
    status = _status(cli, proj)
    assert status["pairs"] == 999 and status["judgments_by_source"] == {"crowd": 2997}
    with open_project(proj) as project, project.store.read() as conn:
        per_pair = conn.execute(select(Judgment.pair_id, func.count()).group_by(Judgment.pair_id)).all()
    assert len(per_pair) == 999 and {n for _, n in per_pair} == {3}
    assert "JSON boolean" in out  # six responses are booleans in the source: kept as text, and said so


def test_reingest_adds_nothing_and_says_so(cli, tmp_path, shared_data):
    proj = tmp_path / "p"
    cli("init", proj)
    path = shared_data / "hh-rlhf-harmless-test-dev.jsonl.gz"
    assert cli("ingest", path, "--project", proj)[0] == 0
    before = _status(cli, proj)
    code, out, err = cli("ingest", path, "--project", proj)
    assert code == 0, err
    assert "nothing new" in out
    assert _status(cli, proj) == before


def test_ingest_streams_in_chunks_with_the_same_result(tmp_path, shared_data, monkeypatch):
    """UKP dev (many rows per topic, the same argument pair voted by several workers) written 97 rows at a time
    stores exactly what one chunk stores, counts repeated rows across chunks, and a bad row in the last chunk
    still leaves the project untouched."""
    import curate.ingest.pipeline as pipeline
    from curate import ingest_files, init_project
    from curate.errors import InputError

    source = shared_data / "ukp-convarg1-dev.jsonl.gz"
    with gzip.open(source, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    doubled = tmp_path / "doubled.jsonl"
    doubled.write_text("\n".join(lines + lines[:150]) + "\n")  # 150 rows repeated after the first chunks

    def stored(project) -> dict:
        with project.store.read() as conn:
            return {table.__tablename__: sorted(conn.scalars(select(table.id)).all())
                    for table in (Record, Completion, Pair, Judgment)}

    reports, contents = [], []
    for chunk in (10**6, 97):
        monkeypatch.setattr(pipeline, "CHUNK_ROWS", chunk)
        with init_project(tmp_path / f"p{chunk}") as project:
            reports.append(ingest_files(project, [doubled]).files[0])
            contents.append(stored(project))
    whole, chunked = reports
    assert contents[0] == contents[1] and len(contents[0]["judgments"]) > 1000
    assert (chunked.rows, chunked.records, chunked.completions, chunked.pairs, chunked.judgments,
            chunked.duplicate_rows) == (whole.rows, whole.records, whole.completions, whole.pairs, whole.judgments,
                                        whole.duplicate_rows)
    assert whole.rows == len(lines) + 150 and whole.duplicate_rows >= 150 and whole.pairs_present == 0

    (tmp_path / "bad.jsonl").write_text("\n".join([*lines, '{"broken": ']) + "\n")
    with init_project(tmp_path / "bad") as project:
        with pytest.raises(InputError, match=rf"bad.jsonl:{len(lines) + 1}: .*nothing was ingested"):
            ingest_files(project, [tmp_path / "bad.jsonl"])
        assert all(ids == [] for ids in stored(project).values())


def test_a_pair_in_two_splits_of_a_split_column_is_noted_once(tmp_path):
    """The file's own split column: a pair repeated in its split is not noted, one in train and test is."""
    from curate import ingest_files, init_project

    row = {"prompt": "Is tea good?", "chosen": "Yes.", "rejected": "No."}
    other = {"prompt": "Is coffee good?", "chosen": "Often.", "rejected": "Never."}
    rows = [{**row, "split": "train"}, {**row, "split": "train"}, {**other, "split": "train"},
            {**other, "split": "test"}]
    (tmp_path / "s.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with init_project(tmp_path / "p") as project:
        report = ingest_files(project, [tmp_path / "s.jsonl"]).files[0]
    assert dict(report.note_rows) == {"a pair is in splits train and test: kept in train, the first read": 1}
    assert report.notes[next(iter(report.notes))] == [f"{tmp_path / 's.jsonl'}:4"]
