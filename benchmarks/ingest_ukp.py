"""Ingest speed: `curate ingest` of UKPConvArg1 dev (8,893 pairs, 52,829 judgments) against a plain
`json.loads` + sqlite3 bulk-insert loop into the same number of rows, in the same run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ingest_ukp.py [PATH]

Prints both times and the ratio (goal: curate within 2x of the plain loop).
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from curate import ingest_files, init_project

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ukp-convarg1-dev.jsonl.gz"


def plain_loop(path: Path, db: Path) -> int:
    """The baseline: parse each line and bulk-insert pairs and votes, no checks, no ids, no dedup."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE pairs (id TEXT PRIMARY KEY, topic TEXT, a1 TEXT, a2 TEXT)")
    conn.execute("CREATE TABLE votes (pair_id TEXT, worker TEXT, value TEXT, reason TEXT)")
    pairs, votes = [], []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            pairs.append((row["id"], row["topic"], row["a1"], row["a2"]))
            if row["gold"] is not None:
                votes.append((row["id"], "gold", row["gold"], None))
            votes.extend((row["id"], w["worker"], w["value"], w.get("reason")) for w in row["workers"])
    with conn:
        conn.executemany("INSERT INTO pairs VALUES (?, ?, ?, ?)", pairs)
        conn.executemany("INSERT INTO votes VALUES (?, ?, ?, ?)", votes)
    conn.close()
    return len(pairs)


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        n_plain = plain_loop(path, Path(tmp) / "plain.db")
        plain = time.perf_counter() - start

        start = time.perf_counter()
        with init_project(Path(tmp) / "proj") as project:
            report = ingest_files(project, [path])
        ours = time.perf_counter() - start
    pairs = report.files[0].pairs
    assert pairs == n_plain, (pairs, n_plain)
    print(f"file: {path.name} ({pairs} pairs, {sum(report.files[0].judgments.values())} judgments)")
    print(f"plain json.loads + sqlite3 executemany: {plain:6.2f} s")
    print(f"curate ingest (checks, content ids, dedup, store): {ours:6.2f} s")
    print(f"ratio curate/plain: {ours / plain:.2f}x (goal: <= 2x)")


if __name__ == "__main__":
    main()
