"""Ingest speed: `curate ingest` of UKPConvArg1 dev (8,893 pairs, 52,829 judgments) against plain
`json.loads` + sqlite3 `executemany` loops, in the same run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ingest_ukp.py [PATH]

Two baselines, both without any checks, progress, notes or dedup:
- *same tables*: hashes the same content ids and bulk-inserts the same rows into a project's own
  tables (same indexes, foreign keys, WAL + synchronous=FULL). This is the fair one: it stores
  exactly what curate stores. Goal: curate within 2x.
- *minimal*: two flat tables, no ids, no constraints: the floor for parsing and writing the file.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sqlite3
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from curate import ingest_files, init_project

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ukp-convarg1-dev.jsonl.gz"
VALUES = {"a1": "a", "a2": "b", "equal": "tie"}


def _id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def same_tables(path: Path, root: Path) -> int:
    """Parse, hash and bulk-insert the rows curate stores, straight into a project's tables."""
    init_project(root).close()
    conn = sqlite3.connect(root / "curate.db")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=FULL")
    now = datetime.now().isoformat(" ")
    records, completions, pairs, judgments, workers = {}, {}, [], [], {}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            stance = row["topic"].partition("_")[2]
            prompt = f"Write a convincing argument for this stance.\nDebate: {row['title']}\nStance: {stance}"
            rid = records.setdefault(prompt, _id("record", "", prompt))
            ids = []
            for text in (row["a1"].strip(), row["a2"].strip()):
                cid = completions.setdefault((rid, text), _id("completion", rid, text))
                ids.append(cid)
            swap = ids[1] < ids[0]
            low, high = sorted(ids)
            pid = _id("pair", rid, low, high, "ukp:" + row["id"])
            pairs.append((pid, rid, low, high, "ukp:" + row["id"], now))
            votes = [("gold", None, row["gold"], None, "{}")] if row["gold"] else []
            votes += [("crowd", w["worker"], w["value"], w.get("reason"), json.dumps({"competence": w["competence"]}))
                      for w in row["workers"]]
            for source, worker, value, reason, meta in votes:
                choice = VALUES[value]
                choice = {"a": "b", "b": "a"}.get(choice, choice) if swap else choice
                if worker:
                    workers.setdefault(worker, len(workers) + 1)
                judgments.append((_id("judgment", pid, source, worker or "", choice), "pair", source, rid, pid,
                                  workers.get(worker), choice, reason, meta, now))
    with conn:
        conn.executemany("INSERT INTO records (id, prompt, meta, created_at) VALUES (?, ?, '{}', ?)",
                         [(i, p, now) for p, i in records.items()])
        conn.executemany("INSERT INTO completions (id, record_id, text, origin, created_at) "
                         "VALUES (?, ?, ?, 'import', ?)", [(i, r, t, now) for (r, t), i in completions.items()])
        conn.executemany("INSERT OR IGNORE INTO pairs (id, record_id, a_id, b_id, source_key, created_at) "
                         "VALUES (?, ?, ?, ?, ?, ?)", pairs)
        conn.executemany("INSERT INTO annotators (id, name, kind, failed_logins, created_at) "
                         "VALUES (?, ?, 'imported', 0, ?)", [(i, "ukp:" + w, now) for w, i in workers.items()])
        conn.executemany("INSERT OR IGNORE INTO judgments (id, kind, source, record_id, pair_id, annotator_id, choice, "
                         "reason, meta, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", judgments)
    conn.close()
    return len(pairs)


def minimal(path: Path, db: Path) -> int:
    """Parse each line and bulk-insert pairs and votes into two flat tables."""
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


def _time(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    with tempfile.TemporaryDirectory() as tmp:
        t_min, n_min = _time(minimal, path, Path(tmp) / "minimal.db")
        t_same, n_same = _time(same_tables, path, Path(tmp) / "same")

        def ours():
            with init_project(Path(tmp) / "curate") as project:
                return ingest_files(project, [path])

        t_ours, report = _time(ours)
    pairs = report.files[0].pairs
    assert pairs == n_min == n_same, (pairs, n_min, n_same)
    print(f"file: {path.name} ({pairs} pairs, {sum(report.files[0].judgments.values())} judgments)")
    print(f"baseline, same tables (ids + executemany): {t_same:6.2f} s")
    print(f"baseline, minimal (two flat tables):       {t_min:6.2f} s")
    print(f"curate ingest (checks, ids, dedup, store): {t_ours:6.2f} s")
    print(f"ratio curate / same-tables baseline: {t_ours / t_same:.2f}x (goal: <= 2x)")
    print(f"ratio curate / minimal baseline:     {t_ours / t_min:.2f}x")


if __name__ == "__main__":
    main()
