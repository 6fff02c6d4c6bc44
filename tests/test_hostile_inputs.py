"""Hostile input files, on SQLite and PostgreSQL: each is refused with one line ``file:line: reason`` and a
non-zero exit, and the store is left as it was; nothing hangs, and memory stays bounded whatever a file holds."""

from __future__ import annotations

import gzip
import json
import os
import random
import socket
import subprocess
import sys
import zlib
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from conftest import run_cli

from curate.ingest import pipeline, readers
from curate.store.reports import annotators_by_kind, count_rows, judgments_by_source

GOOD = [{"prompt": "Say hi", "chosen": "Hi!", "rejected": "Go away."},
        {"prompt": "Say bye", "chosen": "Bye!", "rejected": "No."}]
USER = {"role": "user", "content": "What is 2+2?"}
CHAT = [{"messages": [USER, {"role": "assistant", "content": "4"}]},
        {"messages": [USER, {"role": "assistant", "content": "Four."}]}]
PANDALM = [{"idx": i, "instruction": f"Do {i}", "input": "", "response1": "a", "response2": "b", "annotator1": 1,
            "cmp_key": "m1_m2", "motivation_app": "app"} for i in (1, 2)]
UKP = [{"id": f"x{i}", "topic": "t_s", "a1": "one", "a2": f"two{i}",
        "workers": [{"worker": "W", "value": "a1", "reason": "fine", "competence": 0.5}]} for i in (1, 2)]


def _jsonl(bad: Any, good: list[dict[str, Any]] = GOOD, eol: str = "\n") -> bytes:
    """Two good rows, then ``bad`` (a row, or the text of line 3)."""
    line = bad if isinstance(bad, str) else json.dumps(bad)  # json.dumps writes \ud800 and \u0000 as escapes
    return (eol.join([*(json.dumps(r) for r in good), line]) + eol).encode()


def _array(bad: str) -> bytes:
    """A JSON array, one item per line from line 2: two good items, then ``bad`` on line 4."""
    return ("[\n" + ",\n".join([*(json.dumps(r) for r in GOOD), bad]) + "\n]\n").encode()


def _csv(*rows: bytes, eol: bytes = b"\n") -> bytes:
    return eol.join([b"prompt,chosen,rejected", *rows]) + eol


def _bomb(path: Path) -> None:
    """A gzip of half a megabyte holding one line of 512 MiB of zeros (gzip members, concatenated)."""
    member = gzip.compress(b"0" * (16 << 20), compresslevel=9)
    path.write_bytes(member * 32)


def _parquet_nul(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"prompt": ["a", "b", "c\x00"], "completion": ["x", "y", "z"]}), path)


def _socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()


def _empty_dir(path: Path) -> None:
    path.mkdir()
    (path / "data.txt").write_text("not a dataset\n")


TRUNCATED_SOURCE = "".join(json.dumps({"prompt": f"p{i}", "chosen": f"c{i}", "rejected": f"r{i}"}) + "\n"
                           for i in range(3000)).encode()
TRUNCATED = gzip.compress(TRUNCATED_SOURCE)[:4000]
TRUNCATED_LINE = zlib.decompressobj(31).decompress(TRUNCATED).count(b"\n") + 1  # the first line it cannot finish
LONG_CSV = _csv(*(f"p{i},c{i},r{i}".encode() for i in range(2, 4001)), b"p4001,c\xff,r")


class Case(NamedTuple):
    name: str
    filename: str
    content: bytes | Callable[[Path], None]
    expected: str  # after the path when it starts with ":"
    args: tuple[str, ...] = ()
    limits: dict[str, int] | None = None  # readers' limits, made small to test them quickly


HOSTILE = [
    # text no database should get: lone surrogates, NUL; blank text, wherever a layout keeps text
    Case("surrogate", "d.jsonl", _jsonl({"prompt": "x \ud800", "chosen": "a", "rejected": "b"}),
         ":3: field 'prompt' holds a lone surrogate, which is not valid Unicode (\\ud800) at character 3"),
    Case("surrogate-in-message", "d.jsonl",
         _jsonl({"messages": [{"role": "user", "content": "\udfff"}, {"role": "assistant", "content": "y"}]}, CHAT),
         ":3: field 'messages' message 1 content holds a lone surrogate"),
    Case("nul", "d.jsonl", _jsonl({"prompt": "x", "chosen": "a\x00b", "rejected": "b"}),
         ":3: field 'chosen' holds a NUL character (\\u0000) at character 2"),
    Case("nul-in-message", "d.jsonl",
         _jsonl({"messages": [USER, {"role": "assistant", "content": "4\x00"}]}, CHAT),
         ":3: field 'messages' message 2 content holds a NUL character"),
    Case("nul-in-reason", "d.jsonl", _jsonl({**UKP[0], "id": "x3", "workers": [
        {"worker": "W", "value": "a1", "reason": "\x00"}]}, UKP), ":3: field 'reason' holds a NUL character"),
    Case("infinite-competence", "d.jsonl", _jsonl(json.dumps({**UKP[0], "id": "x3", "workers": [
        {"worker": "W", "value": "a1", "competence": 1e999}]}).replace("Infinity", "1e999"), UKP),
        ":3: workers vote 1 competence is inf"),
    Case("surrogate-in-model-name", "d.jsonl", _jsonl({**PANDALM[0], "idx": 3, "cmp_key": "m1_\ud83d"}, PANDALM),
         ":3: field 'cmp_key' holds a lone surrogate"),
    Case("nul-in-metadata", "d.jsonl", _jsonl({**PANDALM[0], "idx": 3, "motivation_app": "a\x00"}, PANDALM),
         ":3: field 'motivation_app' holds a NUL character"),
    Case("nul-in-row-id", "d.jsonl", _jsonl({"i": "3\x00", "q": "x", "o1": "y", "o2": "z"},
                                            [{"i": str(i), "q": "x", "o1": "y", "o2": f"z{i}"} for i in (1, 2)]),
         ":3: field 'i' holds a NUL character", ("--map", "id=i,prompt=q,a=o1,b=o2")),
    Case("zero-width-only", "d.jsonl", _jsonl({"prompt": "\u200b\u200b", "chosen": "a", "rejected": "b"}),
         ":3: field 'prompt' is empty"),
    Case("invisible-message", "d.jsonl",
         _jsonl({"messages": [USER, {"role": "assistant", "content": "\u2060\u200d \ufeff"}]}, CHAT),
         ":3: field 'messages' message 2 content is empty"),
    Case("parquet-nul", "d.parquet", _parquet_nul, ":row 3: field 'prompt' holds a NUL character"),
    Case("csv-nul", "d.csv", _csv(b"x,y,z", b"p\x00q,y,z"), ":3: field 'prompt' holds a NUL character"),
    Case("tsv-zero-width", "d.tsv", b"prompt\tchosen\trejected\nx\ty\tz\n\xe2\x80\x8b\ty\tz\n",
         ":3: field 'prompt' is empty"),
    # JSON that is not quite one object per row
    Case("duplicate-key", "d.jsonl", _jsonl('{"prompt": "A", "prompt": "B", "chosen": "y", "rejected": "z"}'),
         ":3: invalid JSON (duplicate key 'prompt')"),
    Case("duplicate-key-nested", "d.jsonl",
         _jsonl('{"messages": [{"role": "user", "content": "a", "content": "b"}, '
                '{"role": "assistant", "content": "y"}]}', CHAT), ":3: invalid JSON (duplicate key 'content')"),
    Case("array-duplicate-key", "d.json", _array('{"prompt": "A",\n "prompt": "B", "chosen": "y", "rejected": "z"}'),
         ":4: invalid JSON (duplicate key 'prompt')"),
    Case("array-syntax-error", "d.json", _array('{"prompt": "x",\n "chosen": "y" "rejected": "z"}'),
         ":5: invalid JSON (Expecting ',' delimiter: column 16)"),
    Case("array-not-an-object", "d.json", _array('"just text"'), ":4: expected a JSON object, got str"),
    Case("array-nested-too-deep", "d.json", _array('{"prompt": ' + "[" * 100000 + "]" * 100000 + "}"),
         ":4: invalid JSON (nested too deeply)"),
    Case("array-missing-comma", "d.json", b'[{"prompt": "x"}\n\n{"prompt": "y"}]',
         ":3: invalid JSON (expected ',' or ']' after an item)"),
    Case("array-extra-data", "d.json", b'[{"prompt": "x"}]\n\n[{"prompt": "y"}]', ":3: invalid JSON (extra data"),
    Case("array-too-large", "d.json", _array(json.dumps({"prompt": "x" * 2000, "chosen": "a", "rejected": "b"})),
         ": a JSON array larger than the 1000 bytes limit; write it as JSONL", limits={"MAX_JSON_ARRAY": 1000}),
    Case("bom-in-the-middle", "d.jsonl", _jsonl("\ufeff" + json.dumps(GOOD[0])), ":3: invalid JSON"),
    Case("crlf", "d.jsonl", _jsonl('{"prompt": "x", "chosen": 7, "rejected": "z"}', eol="\r\n"),
         ":3: field 'chosen' is a number, expected text"),
    Case("huge-integer", "d.jsonl", _jsonl('{"prompt": "x", "chosen": ' + "9" * 5000 + ', "rejected": "z"}'),
         ":3: invalid JSON (Exceeds the limit (4300 digits)"),
    Case("binary-garbage", "d.jsonl", b"\xff" + random.Random(0).randbytes(4096),
         ":1: not UTF-8 text (byte 0) (no row of the file is readable)"),
    # CSV: invalid UTF-8 at its own line, quotes that never close, rows spanning lines
    Case("csv-not-utf8-line-4001", "d.csv", LONG_CSV, ":4001: not UTF-8 text (byte 7)"),
    Case("csv-not-utf8-line-2", "d.csv", _csv(b"x\xff,y,z", b"x2,y,z"), ":2: not UTF-8 text (byte 1)"),
    Case("csv-not-utf8-in-a-quoted-line", "d.csv", _csv(b"x,y,z", b'x2,"many', b'lines \xc3",z'),
         ":4: not UTF-8 text (byte 6)"),
    Case("csv-header-not-utf8", "d.csv", b"prompt,ch\xffosen,rejected\nx,y,z\n", ":1: not UTF-8 text (byte 9)"),
    Case("csv-unclosed-quote", "d.csv", _csv(b"x,y,z", b'x2,y,"z', b"x3,y,z"), ":3: invalid CSV (unexpected end"),
    Case("csv-crlf", "d.csv", _csv(b'x,"two\r\nlines",z', b",y,z", eol=b"\r\n"), ":4: field 'prompt' is empty"),
    Case("csv-old-mac-line-ends", "d.csv", _csv(b'x,"two\rlines",z', b",y,z", eol=b"\r"),
         ":4: field 'prompt' is empty"),
    Case("csv-old-mac-not-utf8", "d.csv", _csv(b"x,y,z", b"x2,\xff,z", eol=b"\r"), ":3: not UTF-8 text (byte 3)"),
    Case("csv-text-after-a-quote", "d.csv", _csv(b"x,y,z", b'"x2"y,y,z', b"x3,y,z"),
         ":3: invalid CSV (',' expected after '\"')"),
    Case("csv-row-too-long", "d.csv", _csv(b"x,y,z", b'x2,y,"' + b"word\n" * 300 + b'"'),
         ":3: CSV row longer than the 1000 bytes limit", limits={"MAX_LINE": 1000}),
    # sizes and compression
    Case("line-too-long", "d.jsonl", _jsonl(json.dumps({"prompt": "x" * 2000, "chosen": "a", "rejected": "b"})),
         ":3: line longer than the 1000 bytes limit", limits={"MAX_LINE": 1000}),
    Case("gzip-bomb", "d.jsonl.gz", _bomb, ":1: line longer than the 64 MiB limit"),
    Case("truncated-gzip", "d.jsonl.gz", TRUNCATED, f":{TRUNCATED_LINE}: cannot read (Compressed file ended"),
    Case("empty-gzip", "d.jsonl.gz", gzip.compress(b""), ": the file holds no rows"),
    Case("not-gzip-after-magic", "d.jsonl.gz", b"\x1f\x8bnot gzip at all", ": cannot read"),
    # what is not a file of rows
    Case("socket", "sock.jsonl", _socket, ": a socket, not a regular file"),
    Case("dangling-symlink", "gone.jsonl", lambda p: p.symlink_to(p.with_name("missing.jsonl")),
         ": a symbolic link to a missing file"),
    Case("directory-without-dataset", "folder", _empty_dir, ": a directory that is not a `datasets` save_to_disk"),
    Case("map-same-column-twice", "d.jsonl", _jsonl({"q": "x", "o": "y"}, [{"q": "a", "o": "b"}] * 2),
         "--map: column 'o' is given to both a and b", ("--map", "prompt=q,a=o,b=o")),
]


def _counts(project) -> dict[str, Any]:
    """Every table ingest writes, counted."""
    with project.store.read() as conn:
        counts: dict[str, Any] = {of: count_rows(conn, of=of)
                                  for of in ("records", "completions", "pairs", "ingested_files")}
        counts["judgments"] = judgments_by_source(conn)
        counts["annotators"] = annotators_by_kind(conn)
    return counts


@pytest.fixture
def seeded(project, tmp_path, cli):
    """The project with one file already ingested, so an unchanged store is not just an empty one."""
    base = tmp_path / "base.jsonl"
    base.write_text(json.dumps({"prompt": "Base", "chosen": "yes", "rejected": "no"}) + "\n")
    assert cli("ingest", base, "--project", project.root)[0] == 0
    return project


def _write(case: Case, path: Path) -> None:
    if callable(case.content):
        case.content(path)
    else:
        path.write_bytes(case.content)


def _refused(err: str, path: Path, expected: str) -> None:
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert (f"{path}{expected}" if expected.startswith(":") else expected) in err, err


@pytest.mark.parametrize("case", HOSTILE, ids=[c.name for c in HOSTILE])
def test_hostile_file_is_refused_in_one_line_and_changes_nothing(cli, seeded, tmp_path, monkeypatch, case):
    for name, value in (case.limits or {}).items():
        monkeypatch.setattr(readers, name, value)
    path = tmp_path / case.filename
    _write(case, path)
    before = _counts(seeded)
    code, _out, err = cli("ingest", path, "--project", seeded.root, *case.args)
    assert code != 0
    _refused(err, path, case.expected)
    assert _counts(seeded) == before
    assert not (seeded.root / "rejects").exists()


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


# Paths that block or never end when opened as files: run as a real process, so a hang fails instead of blocking.
SPECIAL = [
    ("fifo", lambda tmp: _fifo(tmp / "pipe.jsonl"), (), ": a named pipe (FIFO), not a regular file"),
    ("symlink-to-fifo", lambda tmp: _link(tmp / "link.jsonl", _fifo(tmp / "pipe.jsonl")), (),
     ": a named pipe (FIFO), not a regular file"),
    ("dev-zero", lambda tmp: Path("/dev/zero"), ("--format", "jsonl"), ": a character device, not a regular file"),
    ("name-not-utf8", lambda tmp: _named(tmp / os.fsdecode(b"bad\xff.jsonl")), (),
     ": the file name is not valid UTF-8; rename the file"),
]


def _link(path: Path, target: Path) -> Path:
    path.symlink_to(target)
    return path


def _named(path: Path) -> Path:
    path.write_text(json.dumps(GOOD[0]) + "\n")
    return path


@pytest.mark.parametrize(("name", "make", "args", "expected"), SPECIAL, ids=[s[0] for s in SPECIAL])
def test_special_paths_are_refused_without_reading(seeded, tmp_path, name, make, args, expected):
    path = make(tmp_path)
    before = _counts(seeded)
    result = run_cli("ingest", str(path), "--project", str(seeded.root), *args, timeout=60)
    assert result.returncode == 1
    shown = str(path).encode("utf-8", "backslashreplace").decode()  # how stderr writes an undecodable name
    _refused(result.stderr, Path(shown), expected)
    assert _counts(seeded) == before


def test_skip_bad_keeps_unstorable_rows_whole_in_the_rejects_file(cli, seeded, tmp_path):
    rows = [*GOOD, {"prompt": "x \ud800", "chosen": "a", "rejected": "b"},
            {"prompt": "x", "chosen": "a\x00", "rejected": "b"}, {"prompt": "\u200b", "chosen": "a", "rejected": "b"},
            {"prompt": "kept", "chosen": "a", "rejected": "b"}]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = _counts(seeded)["pairs"]
    rejects = tmp_path / "rejects.jsonl"
    code, out, err = cli("ingest", path, "--project", seeded.root, "--skip-bad", "--rejects", rejects)
    assert code == 0, err
    assert "skipped 3 bad row(s)" in out
    lines = rejects.read_bytes().decode("utf-8").splitlines()  # valid UTF-8, one JSON object a line
    found = [json.loads(line) for line in lines]
    assert [r["location"] for r in found] == [f"{path}:{n}" for n in (3, 4, 5)]
    assert [r["row"] for r in found] == rows[2:5]  # the surrogate too, as its JSON escape
    assert "lone surrogate" in found[0]["reason"] and "NUL" in found[1]["reason"] and "empty" in found[2]["reason"]
    assert _counts(seeded)["pairs"] == before + 3


def _prompts(project) -> set[str]:
    from sqlalchemy import select

    from curate.store.schema import Record

    with project.store.read() as conn:
        return set(conn.scalars(select(Record.prompt)))


def test_skip_bad_skips_a_csv_row_that_is_not_utf8(cli, seeded, tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(_csv(b"x,y,z", b'x2,"two', b'lines \xff",z', b"x3,y,z"))
    rejects = tmp_path / "rejects.jsonl"
    code, _, err = cli("ingest", path, "--project", seeded.root, "--skip-bad", "--rejects", rejects)
    assert code == 0, err
    assert [json.loads(line)["location"] for line in rejects.read_text().splitlines()] == [f"{path}:4"]
    assert {"x", "x3"} <= _prompts(seeded) and "x2" not in _prompts(seeded)


def test_skip_bad_skips_malformed_csv_rows_of_an_old_mac_file(cli, seeded, tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(_csv(b"x,y,z", b'"x2"y,y,z', b'x3,"two\rlines \xff",z', b"x4,y,z", eol=b"\r"))
    rejects = tmp_path / "rejects.jsonl"
    code, _, err = cli("ingest", path, "--project", seeded.root, "--skip-bad", "--rejects", rejects)
    assert code == 0, err
    found = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [r["location"] for r in found] == [f"{path}:3", f"{path}:5"]
    assert "',' expected after '\"'" in found[0]["reason"] and "not UTF-8" in found[1]["reason"]
    assert {"x", "x4"} <= _prompts(seeded) and not {"x2", "x3"} & _prompts(seeded)


def test_skip_bad_skips_a_bad_item_of_a_json_array(cli, seeded, tmp_path):
    path = tmp_path / "d.json"
    path.write_bytes(_array('{"prompt": "A",\n "prompt": "B", "chosen": "y", "rejected": "z"}'))
    rejects = tmp_path / "rejects.jsonl"
    code, _, err = cli("ingest", path, "--project", seeded.root, "--skip-bad", "--rejects", rejects)
    assert code == 0, err
    assert [json.loads(line)["location"] for line in rejects.read_text().splitlines()] == [f"{path}:4"]


def test_skip_bad_runs_in_the_same_second_keep_their_own_rejects(cli, sqlite_project, tmp_path, monkeypatch):
    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Frozen:
            return cls(2024, 1, 1, tzinfo=timezone.utc)

    monkeypatch.setattr(pipeline, "datetime", Frozen)
    for number in (1, 2):
        path = tmp_path / f"d{number}.jsonl"
        path.write_bytes(_jsonl({"prompt": f"bad {number}", "chosen": 7, "rejected": "z"}))
        assert cli("ingest", path, "--project", sqlite_project.root, "--skip-bad")[0] == 0
    files = sorted((sqlite_project.root / "rejects").iterdir())
    assert len(files) == 2, files
    assert {json.loads(f.read_text())["row"]["prompt"] for f in files} == {"bad 1", "bad 2"}


def test_rejects_are_staged_in_a_file_of_this_run_only(cli, sqlite_project, tmp_path):
    other = tmp_path / ".rejects.jsonl.tmp"  # what another run writing the same rejects file would be staging
    other.write_text("another run's rejects\n")
    path = tmp_path / "d.jsonl"
    path.write_bytes(_jsonl({"prompt": "x", "chosen": 7, "rejected": "z"}))
    code, _, err = cli("ingest", path, "--project", sqlite_project.root, "--skip-bad", "--rejects",
                       tmp_path / "rejects.jsonl")
    assert code == 0, err
    assert other.read_text() == "another run's rejects\n"
    assert json.loads((tmp_path / "rejects.jsonl").read_text())["location"] == f"{path}:3"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [other.name]


MEMORY_PROBE = """
import resource, sys
from pathlib import Path
from curate import ingest_files, open_project
from curate.errors import InputError
with open_project(Path(sys.argv[1])) as project:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        ingest_files(project, [Path(sys.argv[2])])
    except InputError as err:
        print(err)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_gzip_bomb_costs_bounded_memory(sqlite_project, tmp_path):
    """512 MiB of zeros on one line (a 0.5 MB file) is refused at the 64 MiB line limit, not read whole."""
    path = tmp_path / "bomb.jsonl.gz"
    _bomb(path)
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(sqlite_project.root), str(path)],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    message, grown = result.stdout.strip().splitlines()
    assert message.startswith(f"{path}:1: line longer than the 64 MiB limit")
    assert int(grown) < 160, f"peak memory grew by {grown} MiB"
