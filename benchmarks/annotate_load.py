"""Load on the annotation app: ANNOTATORS people submit SUBMITS judgments each, all at once, over HTTP to a
real `curate serve` process (SQLite, WAL, synchronous=FULL), with a double submit (same client token)
1 time in 20, and THINK seconds (mean, exponential) between receiving an item and submitting it: 0 is a
stress test (every annotator as fast as the server answers); people take seconds.

Prints submit latency p50/p95/p99 (goal: p95 < 100 ms on 2 cores), checks that exactly the expected
judgments are stored, none lost or doubled, and times a plain baseline in the same run: the same writers
inserting one row per judgment straight into SQLite, one transaction each.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/annotate_load.py [ANNOTATORS] [SUBMITS] [THINK]
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from curate import ingest_files, init_project
from curate.annotate.client import AppClient
from curate.annotate.users import add_user
from curate.select.rounds import select_round

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CURATE = Path(sys.executable).with_name("curate")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"curate serve exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("curate serve did not come up")


def annotate(url: str, name: str, submits: int, think: float, latencies: list[float], acked: list[str]) -> None:
    rng = np.random.default_rng(int(name.removeprefix("annotator")))
    with AppClient(url, name, f"password-{name}") as client:
        for _ in range(submits):
            item = client.item()
            if think:
                time.sleep(rng.exponential(think))
            start = time.perf_counter()
            saved = client.submit_pair(item, ["A", "B", "tie", "both_bad"][int(rng.integers(4))])
            latencies.append(time.perf_counter() - start)
            if rng.random() < 0.05:
                again = client.submit_pair(item, "A")
                assert again["duplicate"] and again["judgment"] == saved["judgment"], again
            acked.append(saved["judgment"])


def baseline(db: Path, writers: int, submits: int) -> float:
    """The same number of one-row transactions, straight into SQLite from as many threads."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE j (id INTEGER PRIMARY KEY, who TEXT, choice TEXT)")
    con.close()

    def write(who: int) -> None:
        c = sqlite3.connect(db, timeout=60, isolation_level=None)
        c.execute("PRAGMA synchronous=FULL")
        for _ in range(submits):
            c.execute("BEGIN IMMEDIATE")
            c.execute("INSERT INTO j (who, choice) VALUES (?, ?)", (str(who), "a"))
            c.execute("COMMIT")
        c.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def main() -> None:
    annotators = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    submits = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    think = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "p"
        with init_project(root) as project:
            ingest_files(project, [DATA / "ukp-convarg1-dev.jsonl.gz"])
            select_round(project, budget=submits, strategy="random", route="rank")
            names = [f"annotator{i}" for i in range(annotators)]
            for name in names:
                add_user(project.store, name, role="annotator", password=f"password-{name}")
        config = (root / "curate.toml").read_text().replace("overlap = 1", f"overlap = {annotators}")
        (root / "curate.toml").write_text(config)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
        proc = subprocess.Popen([str(CURATE), "serve", "--project", str(root), "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_up(url, proc)
            latencies: list[float] = []
            acked: list[str] = []
            start = time.perf_counter()
            threads = [threading.Thread(target=annotate, args=(url, n, submits, think, latencies, acked))
                       for n in names]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            took = time.perf_counter() - start
        finally:
            proc.kill()
            proc.wait()
        con = sqlite3.connect(root / "curate.db")
        stored = con.execute("SELECT COUNT(*), COUNT(DISTINCT item_id || ':' || annotator_id) FROM judgments "
                             "WHERE source = 'app'").fetchone()
        ids = {r[0] for r in con.execute("SELECT id FROM judgments WHERE source = 'app'")}
        con.close()
        plain = baseline(Path(tmp) / "plain.db", annotators, submits)
    expected = annotators * submits
    lat = np.array(latencies) * 1000
    print(f"{annotators} annotators x {submits} submits over HTTP, think time {think:g} s, in {took:.1f} s "
          f"({expected / took:.0f} judgments/s, each with its item request)")
    print(f"submit latency: p50 {np.percentile(lat, 50):.1f} ms, p95 {np.percentile(lat, 95):.1f} ms, "
          f"p99 {np.percentile(lat, 99):.1f} ms (goal p95 < 100 ms)")
    print(f"stored {stored[0]} judgments ({stored[1]} distinct item x annotator), expected {expected}; "
          f"acknowledged and missing: {len(set(acked) - ids)}")
    each = plain / expected * 1000
    print(f"plain baseline: {expected} one-row SQLite transactions from {annotators} threads in {plain:.2f} s "
          f"({each:.2f} ms each); the app's p50 submit is {np.percentile(lat, 50) / each:.0f}x that")
    if stored[0] != expected or stored[1] != expected or set(acked) - ids:
        raise SystemExit("judgments lost or doubled")


if __name__ == "__main__":
    main()
