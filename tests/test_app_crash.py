"""kill -9 the real `curate serve` process 20 times while annotators submit: the SQLite database stays
intact (PRAGMA integrity_check) and every judgment the server acknowledged is there, none doubled."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import threading
import time

import httpx
import pytest
from conftest import APP_USERS, free_port, set_config, start_server

from curate.annotate.client import AppClient
from curate.errors import CurateError

KILLS = int(os.environ.get("CURATE_KILLS", "20"))


@pytest.mark.slow
def test_kill_9_under_load_loses_no_acknowledged_judgment(annotation_base, tmp_path):
    root = tmp_path / "proj"
    shutil.copytree(annotation_base, root)
    set_config(root, "annotate", overlap=3)
    acked: list[str] = []
    errors: list[BaseException] = []
    rng = random.Random(0)
    names = ["bob", "carol", "dave"]
    for _ in range(KILLS):
        port = free_port()
        proc = start_server(root, port)
        stop = threading.Event()

        def annotate(name: str, url: str = f"http://127.0.0.1:{port}", stop: threading.Event = stop) -> None:
            try:
                with AppClient(url, name, APP_USERS[name][1], timeout=10) as client:
                    while not stop.is_set():
                        item = client.item()
                        if item is None:
                            return
                        acked.append(client.submit_pair(item, rng.choice("AB"))["judgment"])
            except (httpx.HTTPError, CurateError, ValueError) as err:
                errors.append(err)  # the server died under us: what was not acknowledged may be lost

        threads = [threading.Thread(target=annotate, args=(name,)) for name in names]
        before = len(acked)
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acked) == before and time.monotonic() < deadline:  # load is flowing (first calls warm up)
            time.sleep(0.05)
        time.sleep(rng.uniform(0.1, 1.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stop.set()
        for t in threads:
            t.join()
    con = sqlite3.connect(root / "curate.db")
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = {r[0] for r in con.execute("SELECT id FROM judgments WHERE source = 'app'")}
        doubled = con.execute("SELECT COUNT(*) - COUNT(DISTINCT item_id || ':' || annotator_id) FROM judgments "
                              "WHERE source = 'app'").fetchone()[0]
        orphans = con.execute("SELECT COUNT(*) FROM assignments a LEFT JOIN judgments j ON j.id = a.judgment_id "
                              "WHERE a.status = 'done' AND j.id IS NULL").fetchone()[0]
    finally:
        con.close()
    assert len(acked) >= 3 * KILLS, errors[:5]  # the load was real: judgments were acknowledged in every life
    assert set(acked) <= stored and doubled == 0 and orphans == 0
    print(f"{KILLS} kills: {len(acked)} judgments acknowledged, all {len(set(acked) & stored)} stored; "
          f"{len(stored)} stored in all (some were written but the answer died with the server); integrity ok")
