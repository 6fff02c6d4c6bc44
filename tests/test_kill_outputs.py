"""kill -9 the real `curate select` and `curate export`: at every rename and symlink they make (strace injects
the SIGKILL, where strace is installed), at random moments, and right after a round is committed or an export
starts staging. A reader always finds the old output or the new one, whole; `curate status` names a round whose
manifest a kill prevented, `curate round repair` rewrites it byte for byte, the next `select` repairs it too, and
a rerun leaves nothing behind."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import run_cli

from curate import ingest_files, init_project, open_project
from curate.select.rounds import manifest_problems

KILLS = int(os.environ.get("CURATE_KILLS", "20"))
CURATE = str(Path(sys.executable).with_name("curate"))
STRACE = shutil.which("strace")
CALLS = ("rename", "renameat", "renameat2", "symlink", "symlinkat")  # every step that makes something visible


@pytest.fixture
def sample_project(tmp_path, samples) -> Path:
    root = tmp_path / "proj"
    with init_project(root) as project:
        ingest_files(project, [samples["ukp"]])
    return root


def timed(*args: str) -> float:
    start = time.monotonic()
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    return time.monotonic() - start


def kill_9(args: list[str], *, at: float | None = None, when: Callable[[], bool] | None = None) -> bool:
    """Run ``curate ARGS`` and kill -9 it ``at`` seconds in, or as soon as ``when()`` holds; whether it was still
    running when the signal came."""
    proc = subprocess.Popen([CURATE, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + (at if at is not None else 120)
    while time.monotonic() < deadline and proc.poll() is None and not (when and when()):
        time.sleep(0.001 if when else 0.01)
    running = proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL) if running else None
    proc.wait()
    return running


def kill_at_call(args: list[str], k: int, call: str = "rename") -> bool:
    """Run ``curate ARGS`` under strace, which kills it (SIGKILL) as it makes its ``k``-th ``call`` (strace counts
    each system call on its own); whether it was killed (False: it made fewer and finished)."""
    done = subprocess.run([STRACE or "strace", "-f", "-qq", "-o", os.devnull, "-e", f"trace={call}", "-e",
                           f"inject={call}:signal=KILL:when={k}", CURATE, *args], capture_output=True, text=True)
    assert done.returncode in (0, 137, -9), done.stderr
    return done.returncode != 0


def every_call(args: Callable[[], list[str]]) -> Iterator[bool]:
    """For each of ``CALLS``: kill ``curate ARGS`` at its first such call, then (rerun) at its second, ... until a
    run finishes (nothing, where strace is not installed); whether each was killed."""
    for call in CALLS if STRACE else ():
        for k in range(1, 40):
            killed = kill_at_call(args(), k, call)
            yield killed
            if not killed:
                break
        else:
            raise AssertionError(f"a run made 40 {call} calls and was killed at each")


def manifest_file(root: Path, number: int) -> Path:
    return root / "rounds" / f"{number:04d}" / "manifest.json"


@pytest.mark.slow
def test_kill_9_during_select_leaves_whole_rounds_and_status_finds_a_missing_manifest(sample_project):
    root = sample_project
    con = sqlite3.connect(root / "curate.db")

    def rounds() -> list[int]:
        return [r[0] for r in con.execute("SELECT number FROM rounds ORDER BY number")]

    seconds = timed("select", "--project", str(root), "-n", "4", "--strategy", "random", "--seed", "1")
    rng, tries, killed, half, missed, problems = random.Random(0), 0, 0, 0, set(), {}

    def args() -> list[str]:
        return ["select", "--project", str(root), "-n", "4", "--strategy", "random", "--seed", str(tries + 2)]

    def check() -> None:
        nonlocal half, missed, problems
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("SELECT COUNT(*) FROM rounds r WHERE NOT EXISTS (SELECT 1 FROM items i "
                           "WHERE i.round_id = r.id)").fetchone() == (0,)  # a round is stored whole or not at all
        with open_project(root) as project:
            problems = manifest_problems(project)  # a select that got far enough repaired earlier ones
        half += sum(why != "missing" for why in problems.values())
        missed |= set(problems)

    for was_killed in every_call(args):
        tries, killed = tries + 1, killed + was_killed
        check()
    for i in range(KILLS):
        before = len(rounds())
        # odd tries: kill as soon as the round is committed, before its manifest can be written
        killed += kill_9(args(), at=rng.uniform(0.05, 1.2 * seconds)) if i % 2 == 0 else \
            kill_9(args(), when=lambda before=before: len(rounds()) > before)
        tries += 1
        check()
    if STRACE:  # one more, at its own manifest's rename (after repairing those the random kills left)
        assert kill_at_call(args(), len(problems) + 1)
        tries, killed = tries + 1, killed + 1
        check()
        assert len(problems) == 1
    missing = sorted(problems)
    # status names every round a kill left without its manifest; simulate one more such kill on round 1
    kept = manifest_file(root, 1).read_bytes()
    manifest_file(root, 1).unlink()
    status = run_cli("status", "--project", str(root), "--json")
    found = {p["round"]: p["problem"] for p in json.loads(status.stdout)["manifest_problems"]}
    assert found == dict.fromkeys([1, *missing], "missing")
    assert "curate round repair 1" in run_cli("status", "--project", str(root)).stdout
    repaired = run_cli("round", "repair", "1", "--project", str(root))
    assert repaired.returncode == 0 and "rewritten from the store (missing)" in repaired.stdout
    assert manifest_file(root, 1).read_bytes() == kept  # byte for byte what select wrote
    # the next select repairs what is left, then proceeds
    after = run_cli("select", "--project", str(root), "-n", "4", "--strategy", "random", "--seed", "99", "--json")
    assert after.returncode == 0, after.stderr
    assert [n for n in json.loads(after.stdout)["notes"] if "rewritten from the store" in n] == \
        [f"round {n}'s manifest was missing: rewritten from the store" for n in missing]
    with open_project(root) as project:
        assert manifest_problems(project) == {}
    assert sorted(p.name for p in (root / "rounds").rglob("*") if p.is_file()) == ["manifest.json"] * len(rounds())
    con.close()
    assert killed >= KILLS // 2 and half == 0
    print(f"{killed} kills of curate select in {tries} runs, 0 half-written outputs; {len(missed)} rounds left "
          "without a manifest (killed after the commit), each found by status and rewritten byte for byte")


KINDS = {"jsonl": "d.jsonl", "parquet": "d.parquet", "datasets": "d"}
VARIANTS = ([], ["--lineage", "--weights"])  # lineage columns in every split: a mixed set shows


def snapshot(folder: Path, name: str) -> dict[str, bytes]:
    """What a reader finds of the export ``name`` in ``folder``: each file of it (through links) and its bytes."""
    out = folder / name
    if out.suffix:
        names = [name] + [f"{out.stem}.{split}{out.suffix}" for split in ("test", "calibration")]
        return {n: (folder / n).read_bytes() for n in names if (folder / n).is_file()}
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} \
        if out.is_dir() else {}


@pytest.mark.slow
def test_kill_9_during_export_leaves_the_old_set_or_the_new_one_never_a_mix(sample_project, tmp_path):
    from curate.export import export
    from curate.select.rounds import select_round

    root, rng = sample_project, random.Random(1)
    expected: dict[tuple[str, int], dict[str, bytes]] = {}
    with open_project(root) as project:  # the slices (test and calibration splits), and each export whole
        select_round(project, budget=4, strategy="random")
        for kind, name in KINDS.items():
            for v, flags in enumerate(VARIANTS):
                folder = tmp_path / f"ref-{kind}-{v}"
                folder.mkdir()
                export(project, fmt="dpo", out=folder / name, with_imported=True, lineage=bool(flags),
                       weights=bool(flags))
                expected[kind, v] = snapshot(folder, name)
    assert all(expected[k, 0] != expected[k, 1] and len(expected[k, 0]) >= 3 for k in KINDS)

    def args(kind: str, v: int) -> list[str]:
        return ["export", "--project", str(root), "-f", "dpo", "--with-imported", "--out",
                str(root / "exports" / kind / KINDS[kind]), *VARIANTS[v]]

    seconds, shown = {}, {}
    for kind in KINDS:
        (root / "exports" / kind).mkdir()
        seconds[kind] = timed(*args(kind, 0))
        shown[kind] = 0
    tries = killed = half = 0

    def check(kind: str, new: int) -> None:
        nonlocal half
        seen = snapshot(root / "exports" / kind, KINDS[kind])
        if seen == expected[kind, new]:
            shown[kind] = new
        elif seen != expected[kind, shown[kind]]:
            half += 1

    for kind in KINDS:  # at every rename and symlink of a run, the new variant each time
        for was_killed in every_call(lambda kind=kind: args(kind, 1 - shown[kind])):
            tries, killed = tries + 1, killed + was_killed
            check(kind, 1 - shown[kind]) if was_killed else shown.update({kind: 1 - shown[kind]})
    for i in range(KILLS):
        kind = list(KINDS)[i % len(KINDS)]
        folder, new = root / "exports" / kind, 1 - shown[kind]

        def staging(folder: Path = folder) -> bool:  # a new hidden name beside the output, or in its versions
            return any(p.name.startswith(("partial-", ".d.")) and not p.name.endswith(".versions")
                       for p in (*folder.iterdir(), *folder.glob(".*.versions/*")))

        # odd tries: kill a moment after the run starts staging its files
        killed += kill_9(args(kind, new), at=rng.uniform(0.05, 1.2 * seconds[kind])) if i % 2 == 0 else \
            kill_9(args(kind, new), when=lambda staging=staging: staging() and time.sleep(rng.uniform(0, 0.08)) is None)
        tries += 1
        check(kind, new)
    assert half == 0, f"{half} of {killed} kills left a half-written or mixed export"
    for kind, name in KINDS.items():  # a rerun publishes the new set and leaves nothing of the killed runs
        folder, new = root / "exports" / kind, 1 - shown[kind]
        assert timed(*args(kind, new))
        assert snapshot(folder, name) == expected[kind, new]
        versions = sorted(p.name for p in folder.glob(f".{name}.versions/*"))
        assert len(versions) == 4 and versions[:2] == ["current", "lock"], versions  # this version, the one before
        assert all(v.startswith("v-") for v in versions[2:]), versions
        assert sorted(p.name for p in folder.iterdir()) == sorted([f".{name}.versions", *(
            [name] if kind == "datasets" else expected[kind, new])])
    assert killed >= KILLS // 2
    print(f"{killed} kills of curate export (jsonl, parquet, datasets) in {tries} runs, 0 half-written outputs; "
          "no leftovers after a rerun")
