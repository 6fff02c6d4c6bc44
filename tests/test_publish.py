"""``curate.files``: a set of files published at once through one symlink swap, the old set kept until the new
one is complete, and what dead writers left removed (a live writer's staging never)."""

from __future__ import annotations

import os
import subprocess

import pytest

from curate.files import HOST, owner_alive, publish_text, publishing, staged, staged_folder, versions_folder


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def write_set(anchor, files: dict[str, str]) -> None:
    with publishing(anchor, names=["x.test.jsonl", "x.calibration.jsonl"]) as stage:
        for name, text in files.items():
            (stage / name).write_text(text)


def visible(folder) -> dict[str, str]:
    """What a reader sees: every name in ``folder`` that opens, with its text (hidden names aside)."""
    return {p.name: p.read_text() for p in sorted(folder.iterdir()) if not p.name.startswith(".") and p.is_file()}


def test_a_set_is_published_whole_and_a_smaller_set_leaves_no_stale_name(tmp_path):
    anchor = tmp_path / "x.jsonl"
    write_set(anchor, {"x.jsonl": "train 1", "x.test.jsonl": "test 1", "x.calibration.jsonl": "cal 1"})
    assert visible(tmp_path) == {"x.jsonl": "train 1", "x.test.jsonl": "test 1", "x.calibration.jsonl": "cal 1"}
    assert all((tmp_path / n).is_symlink() for n in visible(tmp_path))
    write_set(anchor, {"x.jsonl": "train 2", "x.test.jsonl": "test 2"})
    assert visible(tmp_path) == {"x.jsonl": "train 2", "x.test.jsonl": "test 2"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".x.jsonl.versions", "x.jsonl", "x.test.jsonl"]
    store = versions_folder(anchor)
    assert sorted(p.name for p in store.iterdir() if not p.name.startswith("v-")) == ["current", "lock"]
    current = os.readlink(store / "current")
    kept = sorted(p.name for p in store.glob("v-*") if p.name != current)
    assert len(kept) == 1 and (store / kept[0] / "x.jsonl").read_text() == "train 1"  # the one just replaced stays
    write_set(anchor, {"x.jsonl": "train 3"})
    assert sorted(p.name for p in store.glob("v-*")) == sorted([current, os.readlink(store / "current")])


def test_a_failure_midway_keeps_the_old_set_and_leaves_nothing(tmp_path):
    anchor = tmp_path / "x.jsonl"
    write_set(anchor, {"x.jsonl": "old", "x.test.jsonl": "old test"})
    before = sorted(p.name for p in versions_folder(anchor).iterdir())
    with pytest.raises(RuntimeError), publishing(anchor) as stage:
        (stage / "x.jsonl").write_text("new")
        raise RuntimeError("the writer failed after one file")
    assert visible(tmp_path) == {"x.jsonl": "old", "x.test.jsonl": "old test"}
    assert sorted(p.name for p in versions_folder(anchor).iterdir()) == before  # own staging removed


def test_a_folder_is_replaced_by_one_swap(tmp_path):
    anchor = tmp_path / "data"
    for n in (1, 2):
        with publishing(anchor) as stage:
            (stage / "data" / "train").mkdir(parents=True)
            (stage / "data" / "train" / "rows.arrow").write_text(f"rows {n}")
        assert (anchor / "train" / "rows.arrow").read_text() == f"rows {n}" and anchor.is_symlink()
    assert len(list(versions_folder(anchor).glob("v-*"))) == 2  # this one and the one it replaced


def test_files_and_folders_written_before_this_layout_are_replaced(tmp_path):
    (tmp_path / "x.jsonl").write_text("legacy")
    (tmp_path / "x.calibration.jsonl").write_text("legacy cal")  # the new set has no calibration split
    (tmp_path / "other.txt").write_text("not ours")
    write_set(tmp_path / "x.jsonl", {"x.jsonl": "new", "x.test.jsonl": "new test"})
    assert visible(tmp_path) == {"x.jsonl": "new", "x.test.jsonl": "new test", "other.txt": "not ours"}
    (tmp_path / "data" / "train").mkdir(parents=True)
    (tmp_path / "data" / "train" / "old.arrow").write_text("legacy rows")
    with publishing(tmp_path / "data") as stage:
        (stage / "data" / "train").mkdir(parents=True)
        (stage / "data" / "train" / "new.arrow").write_text("rows")
    assert [p.name for p in (tmp_path / "data" / "train").iterdir()] == ["new.arrow"]


def test_dead_writers_leftovers_are_removed_and_a_live_writers_staging_is_kept(tmp_path):
    anchor = tmp_path / "x.jsonl"
    write_set(anchor, {"x.jsonl": "one"})
    store = versions_folder(anchor)
    dead = dead_pid()
    live = subprocess.Popen(["sleep", "60"])
    try:
        (store / f"partial-{HOST}-{dead}-0badf00d").mkdir()  # killed while writing
        (store / f"partial-{HOST}-{dead}-0badf00d" / "x.jsonl").write_text("half")
        (store / "v-00000000deadbeef").mkdir()  # killed between its rename and the swap
        os.symlink("v-00000000deadbeef", store / f".current.{HOST}-{dead}-0badf00d.link")
        os.symlink(".x.jsonl.versions/current/x.jsonl", tmp_path / f".x.jsonl.{HOST}-{dead}-0badf00d.link")
        (store / f"partial-{HOST}-{live.pid}-0badf00d").mkdir()  # another run, still writing
        (store / f"partial-0000beef-{dead}-0badf00d").mkdir()  # another host's: its pids mean nothing here
        (tmp_path / f".m.{HOST}-{dead}-0badf00d.tmp.json").write_text("half")
        assert not owner_alive(f"partial-{HOST}-{dead}-0badf00d") and owner_alive(f"partial-{HOST}-{live.pid}-ab")
        write_set(anchor, {"x.jsonl": "two"})
        left = sorted(p.name for p in store.iterdir() if not p.name.startswith("v-"))
        assert left == ["current", "lock", f"partial-0000beef-{dead}-0badf00d", f"partial-{HOST}-{live.pid}-0badf00d"]
        assert len(list(store.glob("v-*"))) == 2 and visible(tmp_path) == {"x.jsonl": "two"}  # and "one"
        assert not list(tmp_path.glob(".x.jsonl.*.link"))
        publish_text(tmp_path / "m.json", "{}")  # a single file's dead temporaries go the same way
        assert sorted(p.name for p in tmp_path.glob(".m.*")) == []
    finally:
        live.kill()
        live.wait()
    write_set(anchor, {"x.jsonl": "three"})  # the other run died: its staging goes now
    assert not list(store.glob(f"partial-{HOST}-*"))


def test_staged_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "m.json"
    publish_text(path, "old")
    with pytest.raises(RuntimeError), staged(path) as tmp:
        tmp.write_text("new")
        raise RuntimeError("failed")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_a_folder_is_staged_whole_replaced_only_when_complete_and_dead_stagings_go(tmp_path):
    target = tmp_path / "adapter"
    dead = dead_pid()
    (tmp_path / f".adapter.{HOST}-{dead}-0badf00d.partial").mkdir()  # a writer killed midway
    (tmp_path / f".adapter.0000beef-{dead}-0badf00d.partial").mkdir()  # another host's
    with staged_folder(target) as stage:
        (stage / "weights").write_text("one")
        assert not target.exists()  # nothing is visible before the folder is complete
    assert (target / "weights").read_text() == "one"
    with pytest.raises(RuntimeError), staged_folder(target) as stage:
        (stage / "weights").write_text("half")
        raise RuntimeError("killed")
    assert (target / "weights").read_text() == "one"
    with staged_folder(target) as stage:
        (stage / "weights").write_text("two")
        assert (target / "weights").read_text() == "one"  # the old folder stays until the new one is whole
    assert (target / "weights").read_text() == "two"
    with staged_folder(target, keep_existing=True) as stage:  # a cache another writer filled first
        (stage / "weights").write_text("three")
    assert (target / "weights").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".adapter.0000beef-{dead}-0badf00d.partial", "adapter"]


def test_a_folder_moved_aside_by_a_killed_writer_is_put_back_never_removed(tmp_path):
    target = tmp_path / "adapter"
    dead = dead_pid()
    aside = tmp_path / f".adapter.{HOST}-{dead}-0badf00d.old"  # killed between moving the old one aside and the rename
    aside.mkdir()
    (aside / "weights").write_text("old")
    with pytest.raises(RuntimeError), staged_folder(target) as stage:
        (stage / "weights").write_text("half")
        raise RuntimeError("killed again")
    assert (target / "weights").read_text() == "old" and not aside.exists()
