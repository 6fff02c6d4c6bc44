"""Bad input: every bad row is reported as file:line: reason, exits non-zero and writes nothing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

GOOD = json.dumps({"prompt": "Say hi", "chosen": "Hi!", "rejected": "Go away."})
GOOD2 = json.dumps({"prompt": "Say bye", "chosen": "Bye!", "rejected": "No."})


def _jsonl(bad: str) -> str:
    """Two good rows, then the bad one on line 3."""
    return "\n".join([GOOD, GOOD2, bad]) + "\n"


# (name, file name, file content, extra CLI args, expected fragment of the error)
BAD_ROWS = [
    ("invalid-json", "d.jsonl", _jsonl('{"prompt": "x", "chosen": '), [], ":3: invalid JSON"),
    ("not-an-object", "d.jsonl", _jsonl('["x", "y"]'), [], ":3: expected a JSON object, got list"),
    ("missing-field", "d.jsonl", _jsonl('{"prompt": "x", "chosen": "y"}'), [], ":3: missing field 'rejected'"),
    ("null-text", "d.jsonl", _jsonl('{"prompt": "x", "chosen": null, "rejected": "z"}'), [],
     ":3: field 'chosen' is null"),
    ("empty-text", "d.jsonl", _jsonl('{"prompt": "   ", "chosen": "y", "rejected": "z"}'), [],
     ":3: field 'prompt' is empty"),
    ("number-not-text", "d.jsonl", _jsonl('{"prompt": "x", "chosen": 7, "rejected": "z"}'), [],
     ":3: field 'chosen' is a number, expected text"),
    ("nan", "d.jsonl", _jsonl('{"prompt": "x", "chosen": NaN, "rejected": "z"}'), [],
     ":3: invalid JSON (NaN is not valid JSON)"),
    ("same-text", "d.jsonl", _jsonl('{"prompt": "x", "chosen": "y", "rejected": "y"}'), [],
     ":3: 'chosen' and 'rejected' are the same text"),
    ("message-without-role", "d.jsonl",
     _jsonl('{"prompt": [{"content": "x"}], "chosen": [{"role": "assistant", "content": "y"}], '
            '"rejected": [{"role": "assistant", "content": "z"}]}'), [],
     ":3: wrong list shape: field 'prompt' message 1 needs 'role' and 'content'"),
    ("messages-vs-text", "d.jsonl",
     _jsonl('{"prompt": [{"role": "user", "content": "x"}], "chosen": "y", "rejected": "z"}'), [],
     ":3: wrong list shape: field 'chosen' must be a list of messages like the prompt"),
    ("unknown-role", "d.jsonl",
     _jsonl('{"prompt": [{"role": "robot", "content": "x"}], "chosen": [{"role": "assistant", "content": "y"}], '
            '"rejected": [{"role": "assistant", "content": "z"}]}'), [],
     ":3: field 'prompt' message 1 has unknown role"),
    ("unknown-label", "d.jsonl",
     '{"q": "x", "o1": "y", "o2": "z", "w": 1}\n{"q": "x2", "o1": "y", "o2": "z", "w": 2}\n'
     '{"q": "x3", "o1": "y", "o2": "z", "w": 3}\n',
     ["--map", "prompt=q,a=o1,b=o2,label=w", "--label-values", "1=a,2=b"], ":3: unknown label value 3 in field 'w'"),
    ("nan-label", "d.jsonl",
     '{"q": "x", "o1": "y", "o2": "z", "w": 1}\n{"q": "x2", "o1": "y", "o2": "z", "w": 2}\n'
     '{"q": "x3", "o1": "y", "o2": "z", "w": 1e999}\n',
     ["--map", "prompt=q,a=o1,b=o2,label=w", "--label-values", "1=a,2=b"], ":3: unknown label value inf"),
    ("kto-label-not-bool", "d.jsonl",
     '{"prompt": "x", "completion": "y", "label": true}\n{"prompt": "x", "completion": "z", "label": false}\n'
     '{"prompt": "x", "completion": "w", "label": "maybe"}\n', [], ":3: unknown label value 'maybe'"),
    ("ukp-vote", "d.jsonl",
     "\n".join(json.dumps({"id": f"x{i}", "topic": "t_s", "a1": "one", "a2": f"two{i}", "gold": None,
                           "workers": [{"worker": "W", "value": "a3" if i == 3 else "a1"}]}) for i in (1, 2, 3)),
     [], ":3: unknown label value 'a3' in field 'workers[1].value'"),
    ("not-utf8", "d.jsonl", None, [], ":3: not UTF-8 text"),
    ("csv-field-count", "d.csv", "prompt,chosen,rejected\nx,y,z\nx2,y,z\nx3,y\n", [],
     ":4: row has 2 fields, the header has 3"),
    ("csv-empty-cell", "d.csv", "prompt,chosen,rejected\nx,y,z\n,y,z\n", [], ":3: field 'prompt' is empty"),
    ("same-after-normalising", "d.jsonl", _jsonl('{"prompt": "x", "chosen": "a\\r\\nb", "rejected": "a\\nb"}'), [],
     ":3: 'chosen' and 'rejected' are the same text"),
    ("nested-too-deep", "d.jsonl", _jsonl('{"prompt": ' + "[" * 100000 + "]" * 100000 + "}"), [],
     ":3: invalid JSON (nested too deeply)"),
    ("ukp-missing-workers", "d.jsonl",
     "\n".join(json.dumps({"id": f"x{i}", "topic": "t_s", "a1": "one", "a2": f"two{i}", "workers": []})
               for i in (1, 2)) + '\n{"id": "x3", "topic": "t_s", "a1": "one", "a2": "two3"}\n', [],
     ":3: missing field 'workers'"),
    ("missing-label-cell", "d.jsonl",
     '{"q": "x", "o1": "y", "o2": "z", "w": 1}\n{"q": "x2", "o1": "y", "o2": "z", "w": 2}\n'
     '{"q": "x3", "o1": "y", "o2": "z"}\n',
     ["--map", "prompt=q,a=o1,b=o2,label=w", "--label-values", "1=a,2=b"], ":3: missing field 'w'"),
    ("bool-row-id", "d.jsonl",
     '{"i": 1, "q": "x", "o1": "y", "o2": "z"}\n{"i": 2, "q": "x2", "o1": "y", "o2": "z"}\n'
     '{"i": true, "q": "x3", "o1": "y", "o2": "z"}\n',
     ["--map", "id=i,prompt=q,a=o1,b=o2"], ":3: field 'i' is a boolean, expected a row id"),
]


def _write(path: Path, content: str | None) -> None:
    if content is None:  # invalid UTF-8 on line 3
        path.write_bytes(f"{GOOD}\n{GOOD2}\n".encode() + b'{"prompt": "\xff\xfe", "chosen": "a", "rejected": "b"}\n')
    else:
        path.write_text(content, encoding="utf-8")


@pytest.fixture
def proj(tmp_path, cli) -> Path:
    assert cli("init", tmp_path / "p")[0] == 0
    return tmp_path / "p"


def _pairs(cli, proj: Path) -> int:
    code, out, _ = cli("status", "--project", proj, "--json")
    assert code == 0
    data = json.loads(out)
    return data["records"] + data["pairs"] + data["judgments"] + data["ingested_files"]


@pytest.mark.parametrize(("name", "filename", "content", "args", "expected"), BAD_ROWS, ids=[b[0] for b in BAD_ROWS])
def test_bad_row_is_reported_and_nothing_is_written(cli, proj, tmp_path, name, filename, content, args, expected):
    path = tmp_path / filename
    _write(path, content)
    code, _out, err = cli("ingest", path, "--project", proj, *args)
    assert code != 0
    assert f"{path}{expected}" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _pairs(cli, proj) == 0


def test_parquet_nan_names_the_row(cli, proj, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    table = {"prompt": ["a", "b", "c"], "completion": ["x", "y", "z"], "score": [1.0, 2.0, float("nan")]}
    pq.write_table(pa.table(table), path)
    code, _, err = cli("ingest", path, "--project", proj, "--map", "prompt=prompt,completion=completion,label=score",
                       "--label-values", "1.0=good,2.0=bad")
    assert code != 0 and f"{path}:row 3: field 'score' is NaN" in err
    assert _pairs(cli, proj) == 0


FILE_ERRORS = [
    ("missing-file", None, [], "no such file or directory"),
    ("unknown-extension", "d.xml", [], "cannot tell the format from the name"),
    ("unknown-layout", "d.jsonl", [], "cannot tell the layout from the columns (foo); use --map"),
    ("map-missing-column", "d.jsonl", ["--map", "prompt=question,completion=foo"],
     "--map names column 'question', which is not in the file"),
    ("map-unknown-role", "d.jsonl", ["--map", "prompt=foo,winner=foo"], "--map: unknown role 'winner'"),
    ("empty-file", "empty.jsonl", [], "the file holds no rows"),
    ("corrupt-gzip", "d.jsonl.gz", [], "cannot read"),
]


@pytest.mark.parametrize(("name", "filename", "args", "expected"), FILE_ERRORS, ids=[f[0] for f in FILE_ERRORS])
def test_bad_file_is_one_line_error(cli, proj, tmp_path, name, filename, args, expected):
    path = tmp_path / (filename or "absent.jsonl")
    if filename == "d.jsonl.gz":
        path.write_bytes(gzip.compress(b'{"foo": 1}\n' * 100)[:-30])
    elif filename == "empty.jsonl":
        path.write_text("\n")
    elif filename:
        path.write_text('{"foo": "bar"}\n')
    code, _, err = cli("ingest", path, "--project", proj, *args)
    assert code != 0
    assert expected in err and len(err.strip().splitlines()) == 1, err
    assert _pairs(cli, proj) == 0


def test_unknown_format_option(cli, proj, tmp_path, sqlite_project):
    from curate import ingest_files
    from curate.errors import InputError

    path = tmp_path / "d.jsonl"
    path.write_text(GOOD + "\n")
    code, _, err = cli("ingest", path, "--project", proj, "--format", "xml")
    assert code == 2 and "'xml' is not one of" in err  # the CLI's own option check
    with pytest.raises(InputError, match="unknown format 'xml'"):
        ingest_files(sqlite_project, [path], file_format="xml")


def test_unreadable_file_names_its_first_problem(cli, proj, tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('"just a string"\n[1]\n')
    code, _, err = cli("ingest", path, "--project", proj)
    assert code == 1 and f"{path}:1: expected a JSON object, got str (no row of the file is readable)" in err


def test_rejects_file_that_cannot_be_written_writes_nothing(cli, proj, tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(_jsonl("{oops"))
    (tmp_path / "afile").write_text("")
    code, _, err = cli("ingest", path, "--project", proj, "--skip-bad", "--rejects", tmp_path / "afile" / "r.jsonl")
    assert code == 1 and "cannot write the rejects file" in err and "Traceback" not in err
    assert _pairs(cli, proj) == 0
    code, _, err = cli("ingest", path, "--project", proj, "--rejects", tmp_path / "r.jsonl")
    assert code == 1 and "--rejects needs --skip-bad" in err


def test_corrupt_database_is_a_one_line_error(cli, proj):
    (proj / "curate.db").write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (proj / f"curate.db{suffix}").unlink(missing_ok=True)
    code, _, err = cli("status", "--project", proj)
    assert code == 1 and "cannot open the database" in err and len(err.strip().splitlines()) == 1


def test_every_bad_row_is_listed(cli, proj, tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(_jsonl("{oops") + '{"prompt": "", "chosen": "a", "rejected": "b"}\n')
    code, _, err = cli("ingest", path, "--project", proj)
    assert code != 0
    assert f"{path}:3: invalid JSON" in err and "(and 1 more bad rows)" in err
    assert f"{path}:4: field 'prompt' is empty" in err


def test_skip_bad_ingests_good_rows_and_writes_rejects(cli, proj, tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(_jsonl('{"prompt": "x", "chosen": 7, "rejected": "z"}') + "{oops\n")
    rejects = tmp_path / "rejects.jsonl"
    code, out, err = cli("ingest", path, "--project", proj, "--skip-bad", "--rejects", rejects)
    assert code == 0, err
    assert "skipped 2 bad row(s)" in out
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [r["location"] for r in lines] == [f"{path}:3", f"{path}:4"]
    assert lines[0]["reason"] == "field 'chosen' is a number, expected text" and lines[0]["row"]["chosen"] == 7
    code, out, _ = cli("status", "--project", proj, "--json")
    assert json.loads(out)["pairs"] == 2


def test_console_script_exit_code_and_message(tmp_path):
    from conftest import run_cli

    assert run_cli("init", str(tmp_path / "p")).returncode == 0
    path = tmp_path / "d.jsonl"
    path.write_text(_jsonl("{oops"))
    result = run_cli("ingest", str(path), "--project", str(tmp_path / "p"))
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {path}:3: invalid JSON") and "Traceback" not in result.stderr
