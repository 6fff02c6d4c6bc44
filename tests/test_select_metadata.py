"""Selection by the metadata ingest keeps (a preference file's other columns): ``curate select --where``,
``--quota`` on a kept column, ``[select] test_split`` as the frozen test slice, and the metadata line of
``curate status``. Every project here is built by ``curate ingest`` of a JSONL file the test writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import set_config

from curate.errors import ConfigError

N = 32  # rows of the file; two pairs (rows) per prompt


def source_rows(extra: int = 0) -> list[dict]:
    """Preference rows with kept columns. Rows 2k and 2k+1 share a prompt (one record, two pairs) but not
    their ``subset``, so a pair's own metadata must win over its record's. ``language`` is missing from the
    last two rows; ``level`` is a number; rows 0, 5, 10, ... are split ``test``."""
    rows = []
    for i in range(N):
        row = {"prompt": f"Question {i // 2}: how would you explain topic {i // 2}?",
               "chosen": f"A careful, correct explanation number {i}.", "rejected": f"A sloppy answer number {i}.",
               "subset": ("math", "code")[i % 2], "language": ("en", "de", "fr")[i % 3], "level": i % 4,
               "split": "test" if i % 5 == 0 else "train", **({"prompt_id": f"p{i}"} if extra else {})}
        if i >= N - 2:
            del row["language"]
        rows.append(row)
    for i in range(extra):  # many distinct prompt_ids: an id column, not a grouping
        rows.append({"prompt": f"Extra question {i}?", "chosen": f"Good {i}.", "rejected": f"Bad {i}.",
                     "split": "train", "prompt_id": f"x{i}"})
    return rows


def make_project(cli, tmp_path: Path, *, no_labels: bool = False, extra: int = 0, **select: object) -> Path:
    """``curate init`` and ``curate ingest`` of the rows above (``select``: [select] keys to set)."""
    data = tmp_path / "pool.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in source_rows(extra)), encoding="utf-8")
    root = tmp_path / "proj"
    assert cli("init", root)[0] == 0
    code, _, err = cli("ingest", data, "--project", root, *(["--no-labels"] if no_labels else []))
    assert code == 0, err
    if select:
        set_config(root, "select", **select)
    return root


def row_of_pair(root: Path) -> dict[str, int]:
    """Pair id -> the source row it came from, found by its texts (not by the metadata under test)."""
    from curate import open_project
    from curate.store import pool as pool_store

    by_texts = {(r["prompt"], frozenset((r["chosen"], r["rejected"]))): i for i, r in enumerate(source_rows())}
    with open_project(root) as project, project.store.read() as conn:
        ids, parts = pool_store.unit_parts(conn, field="pair")
    return {pid: by_texts[(prompt, frozenset((a, b)))] for pid, (prompt, a, b) in zip(ids, parts, strict=True)}


def stored(root: Path) -> tuple[dict[str, str], list]:
    """The store's frozen slices (pair id -> name) and every round item."""
    from curate import open_project
    from curate.store import judgments, rounds

    with open_project(root) as project, project.store.read() as conn:
        return rounds.slices(conn), judgments.round_items(conn)


def manifest(root: Path, number: int) -> dict:
    return json.loads((root / "rounds" / f"{number:04d}" / "manifest.json").read_text(encoding="utf-8"))


def select(cli, root: Path, *args: str) -> tuple[int, dict | None, str]:
    code, out, err = cli("select", "--project", root, "--strategy", "random", "--json", *args)
    return code, json.loads(out) if code == 0 else None, err


def test_where_keeps_only_matching_pairs_in_both_arms_and_slices_come_from_the_whole_pool(cli, tmp_path):
    root = make_project(cli, tmp_path)
    rows, source = row_of_pair(root), source_rows()
    wanted = {p for p, i in rows.items() if source[i].get("language") in ("en", "de") and source[i]["subset"] == "math"}
    assert len(wanted) == 10
    code, result, err = select(cli, root, "-n", "4", "--random-frac", "0.5", "--where", "language=en,de",
                               "--where", "subset=math")
    assert code == 0, err
    assert result["arms"] == {"random": 2, "strategy": 2} and result["reserved"] == {"test": 3, "calibration": 2}
    slices, items = stored(root)
    chosen = [i.pair_id for i in items if i.arm in ("strategy", "random")]
    assert len(chosen) == 4 and set(chosen) <= wanted  # both arms only from the matching pairs
    assert set(slices) - wanted  # the slices were reserved from the whole pool, not from the filter
    first = manifest(root, 1)
    assert first["where"] == [{"key": "language", "op": "=", "values": ["en", "de"]},
                              {"key": "subset", "op": "=", "values": ["math"]}]
    assert any(n.startswith("--where language=en,de subset=math: 10 of 32 pairs match") for n in first["notes"])


def test_where_not_equal_and_numbers_compare_as_text(cli, tmp_path):
    root = make_project(cli, tmp_path)
    rows, source = row_of_pair(root), source_rows()
    # level is stored as a number; a pair without a language is not "en" or "de"
    wanted = {p for p, i in rows.items()
              if source[i].get("language") not in ("en", "de") and source[i]["level"] in (1, 3)}
    assert {rows[p] for p in wanted} == {5, 11, 17, 23, 29, 31}
    code, _, err = select(cli, root, "-n", "1", "--random-frac", "0", "--where", "language!=en,de",
                          "--where", "level=1,3")
    assert code == 0, err
    slices, items = stored(root)
    free = wanted - set(slices)
    assert len(free) > 1 and {i.pair_id for i in items} < free
    code, _, err = select(cli, root, "-n", str(len(free) - 1), "--random-frac", "0", "--where",
                          "language!=en,de", "--where", "level=1,3")
    assert code == 0, err  # everything matching that is left, and nothing else
    _, items = stored(root)
    assert {i.pair_id for i in items} == free
    assert manifest(root, 2)["where"][0] == {"key": "language", "op": "!=", "values": ["en", "de"]}
    code, _, err = select(cli, root, "-n", "1", "--where", "language!=en,de", "--where", "level=1,3")
    assert code == 1 and "are all labelled, chosen in an earlier round or in the frozen slices" in err


@pytest.mark.parametrize(("where", "message"), [
    (["colour=red"], "--where colour=red: no pair has the metadata key 'colour' (keys: language, level, split, "
                     "subset)"),
    (["language=xx", "subset=math"], "no pair matches --where language=xx subset=math (of 32 pairs: 0 match "
                                     "language=xx, 16 match subset=math)"),
    (["language"], "--where takes KEY=VALUE[,VALUE...] or KEY!=VALUE[,...]"),
    (["language=en,"], "--where takes KEY=VALUE"),
])
def test_bad_where_is_a_one_line_error_and_stores_nothing(cli, tmp_path, where, message):
    root = make_project(cli, tmp_path)
    code, _, err = select(cli, root, "-n", "2", *[a for w in where for a in ("--where", w)])
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err
    slices, items = stored(root)
    assert not slices and not items and not (root / "rounds" / "0001").exists()


def test_quota_on_a_kept_column_uses_each_pairs_own_value(cli, tmp_path):
    root = make_project(cli, tmp_path)
    rows, source = row_of_pair(root), source_rows()
    code, _, err = select(cli, root, "-n", "10", "--random-frac", "0", "--quota", "subset=0.5:0.5")
    assert code == 0, err  # the record of rows 2k, 2k+1 keeps row 2k's subset: only the pair's own has both
    strategy = [i.pair_id for i in stored(root)[1] if i.arm == "strategy"]
    assert sorted(source[rows[p]]["subset"] for p in strategy) == ["code"] * 5 + ["math"] * 5
    assert manifest(root, 1)["quota"] == {"by": "subset", "min_share": 0.5, "max_share": 0.5}
    code, _, err = select(cli, root, "-n", "4", "--quota", "prompt=0:0.5")
    assert code == 1 and "needs the grouping 'prompt'" in err


def test_a_where_round_manifest_is_rewritten_from_the_store_byte_for_byte(cli, tmp_path):
    root = make_project(cli, tmp_path)
    assert select(cli, root, "-n", "3", "--where", "subset!=code")[0] == 0
    path = root / "rounds" / "0001" / "manifest.json"
    written = path.read_bytes()
    assert json.loads(written)["where"] == [{"key": "subset", "op": "!=", "values": ["code"]}]
    path.unlink()
    code, out, err = cli("round", "repair", "1", "--project", root)
    assert code == 0 and "rewritten from the store (missing)" in out, err
    assert path.read_bytes() == written


def test_test_split_is_the_whole_frozen_test_slice_and_the_exported_test_split(cli, tmp_path):
    root = make_project(cli, tmp_path, test_split="test", test_size=0.5, calibration_size=3)
    rows, source = row_of_pair(root), source_rows()
    test_pairs = {p for p, i in rows.items() if source[i]["split"] == "test"}
    assert len(test_pairs) == 7
    code, result, err = select(cli, root, "-n", "4")
    assert code == 0, err
    assert result["reserved"] == {"test": 7, "calibration": 3}  # not test_size 0.5 of the pool
    assert "test slice: the 7 pairs of split=test ([select] test_split); test_size not used" in result["notes"]
    slices, items = stored(root)
    assert {p for p, name in slices.items() if name == "test"} == test_pairs
    calibration = {p for p, name in slices.items() if name == "calibration"}
    assert len(calibration) == 3 and not calibration & test_pairs
    assert not test_pairs & {i.pair_id for i in items}  # labelled by the file: no slice items
    first = manifest(root, 1)
    assert set(first["slices_reserved"]["test"]) == test_pairs and first["config"]["select"]["test_split"] == "test"
    code, _, err = cli("export", "--project", root, "--format", "dpo", "--with-imported", "--out", tmp_path / "x.jsonl")
    assert code == 0, err
    exported = [json.loads(line) for line in (tmp_path / "x.test.jsonl").read_text().splitlines()]
    assert sorted((r["prompt"], r["chosen"].strip()) for r in exported) == sorted(
        (source[rows[p]]["prompt"], source[rows[p]]["chosen"]) for p in test_pairs)
    train = [json.loads(line) for line in (tmp_path / "x.jsonl").read_text().splitlines()]
    assert not {r["chosen"] for r in train} & {r["chosen"] for r in exported}
    code, result, err = select(cli, root, "-n", "2")
    assert code == 0 and result["reserved"] == {}, err  # reserved once, at the first round


def test_test_split_pairs_without_a_label_become_slice_items(cli, tmp_path):
    root = make_project(cli, tmp_path, no_labels=True, test_split="test")
    rows, source = row_of_pair(root), source_rows()
    test_pairs = {p for p, i in rows.items() if source[i]["split"] == "test"}
    code, _, err = select(cli, root, "-n", "3")
    assert code == 0, err
    _, items = stored(root)
    assert {i.pair_id for i in items if i.arm == "test"} == test_pairs
    assert all(i.kind == "rank" for i in items if i.arm == "test")
    assert {s["pair_id"] for s in manifest(root, 1)["slice_items"] if s["slice"] == "test"} == test_pairs


def test_near_duplicates_of_test_split_pairs_never_reach_a_round(cli, tmp_path):
    from sqlalchemy import insert

    from curate import open_project
    from curate.store.schema import NearDuplicate

    root = make_project(cli, tmp_path, test_split="test", calibration_size=0)
    rows, source = row_of_pair(root), source_rows()
    by_row = {i: p for p, i in rows.items()}
    copies = [by_row[1], by_row[2]]  # train pairs a later dedup finds to be copies of test pair 0
    with open_project(root) as project, project.store.write() as conn:
        conn.execute(insert(NearDuplicate), [{"field": "pair", "unit_id": p, "representative_id": by_row[0],
                                              "similarity": 0.99, "threshold": 0.95, "model": "test"} for p in copies])
    code, result, err = select(cli, root, "-n", "5", "--random-frac", "0")
    assert code == 0, err
    assert "2 near-duplicates of test/calibration pairs left out" in result["notes"]
    left = manifest(root, 1)["pool"]["available"] - 5
    code, _, err = select(cli, root, "-n", str(left), "--random-frac", "0")
    assert code == 0, err  # everything that may be chosen is chosen, and still not the copies
    slices, items = stored(root)
    assert len(items) == 5 + left and not set(copies) & ({i.pair_id for i in items} | set(slices))
    assert sum(source[rows[p]]["split"] == "test" for p in slices) == len(slices) == 7


def test_a_test_split_no_pair_has_is_a_one_line_error(cli, tmp_path):
    root = make_project(cli, tmp_path, test_split="dev")
    code, _, err = select(cli, root, "-n", "3")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "no pair has split=dev (splits present: train 25, test 7)" in err
    assert stored(root) == ({}, [])
    with pytest.raises(ConfigError, match=r"test_split must be a split's name"):
        set_config(root, "select", test_split=" test")


def test_status_shows_the_metadata_kept(cli, tmp_path):
    root = make_project(cli, tmp_path, extra=1001)
    code, out, err = cli("status", "--project", root)
    assert code == 0, err
    assert "metadata: language (3 values), level (4 values), prompt_id (ids), split (train 1026, test 7), " \
           "subset (2 values)" in out
    code, out, err = cli("status", "--project", root, "--json")
    assert code == 0, err
    assert json.loads(out)["metadata"] == {
        "language": {"values": 3}, "level": {"values": 4}, "prompt_id": {"values": None},
        "split": {"values": 2, "counts": {"train": 1026, "test": 7}}, "subset": {"values": 2}}
    bare = tmp_path / "bare"
    assert cli("init", bare)[0] == 0
    code, out, _ = cli("status", "--project", bare)
    assert code == 0 and "metadata:" not in out
