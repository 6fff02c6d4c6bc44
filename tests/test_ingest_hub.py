"""`curate ingest` of Hugging Face datasets: dataset repository folders, Hub ids (from the cache) and their errors.

Nothing here reaches the network: every CLI run has HF_HUB_OFFLINE=1 and a fresh HF_HOME under tmp_path."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from conftest import run_cli
from sqlalchemy import select

from curate import init_project, open_project
from curate.ingest.hub import DatasetRef, parse_ref
from curate.store import pool
from curate.store.schema import IngestBatch, Pair


def _rows(n: int, tag: str) -> list[dict]:
    return [{"prompt": f"{tag} question {i}", "chosen": f"good {tag} {i}", "rejected": f"bad {tag} {i}"}
            for i in range(n)]


def _repo(root: Path, splits: dict[str, list[dict]], *, kind: str = "parquet") -> Path:
    """A dataset repository as a clone of a Hub repo has it: data/SPLIT-00000-of-00001.EXT."""
    (root / "data").mkdir(parents=True)
    for split, rows in splits.items():
        path = root / "data" / f"{split}-00000-of-00001.{kind}"
        if kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(rows), path)
        else:
            path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return root


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Offline, with an empty Hugging Face cache of this test's own (the CLI runs in a subprocess that reads it)."""
    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    return home


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    init_project(tmp_path / "proj").close()
    return tmp_path / "proj"


def _ingest(proj: Path, *args: str) -> tuple[int, dict | None, str]:
    done = run_cli("ingest", *args, "--project", str(proj), "--json")
    return done.returncode, json.loads(done.stdout) if done.returncode == 0 else None, done.stderr


def _splits(proj: Path) -> Counter:
    """How many pairs the store holds, by the split in their metadata (None: no split stored)."""
    with open_project(proj) as project, project.store.read() as conn:
        metas = pool.pair_meta(conn)
        ids = conn.scalars(select(Pair.id)).all()
    return Counter((metas.get(pair_id) or {}).get("split") for pair_id in ids)


def _one_line(err: str) -> str:
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.mark.parametrize("kind", ["parquet", "jsonl"])
def test_repo_folder_reads_every_split_with_its_name(hub_env, proj, tmp_path, kind):
    repo = _repo(tmp_path / "repo", {"train": _rows(4, "tr"), "test": _rows(2, "te")}, kind=kind)
    code, report, err = _ingest(proj, str(repo))
    assert code == 0, err
    assert [(f["file_format"], f["rows"], f["pairs"]) for f in report["files"]] == [("hf", 6, 6)]
    assert _splits(proj) == Counter({"train": 4, "test": 2})


def test_at_split_reads_one_split_or_a_slice(hub_env, proj, tmp_path):
    repo = _repo(tmp_path / "repo", {"train": _rows(4, "tr"), "test": _rows(2, "te")})
    code, report, err = _ingest(proj, f"{repo}@test")
    assert code == 0, err
    assert report["files"][0]["pairs"] == 2 and _splits(proj) == Counter({"test": 2})
    code, report, err = _ingest(proj, f"{repo}@train[:3]")
    assert code == 0, err
    assert report["files"][0]["pairs"] == 3 and _splits(proj) == Counter({"test": 2, "train": 3})


def test_bad_row_in_a_split_is_located_and_nothing_is_written(hub_env, proj, tmp_path):
    test_rows = _rows(3, "te")
    test_rows[1]["chosen"] = None  # datasets gives None for null and for missing alike
    repo = _repo(tmp_path / "repo", {"train": _rows(4, "tr"), "test": test_rows}, kind="jsonl")
    code, _, err = _ingest(proj, str(repo))
    assert code == 1 and f"{repo}:test row 2: field 'chosen' is null" in err, err
    assert "Traceback" not in err
    code, _, err = _ingest(proj, f"{repo}@test")
    assert code == 1 and _one_line(err).startswith(f"error: {repo}@test:row 2: field 'chosen' is null"), err
    assert _splits(proj) == Counter()
    code, report, err = _ingest(proj, str(repo), "--skip-bad")
    assert code == 0, err
    assert report["files"][0]["bad_rows"] == 1 and _splits(proj) == Counter({"train": 4, "test": 2})


def test_hub_id_offline_and_not_cached_is_one_line(hub_env, proj):
    for arg in ("someorg/somedata", "somedata:en@train"):
        code, _, err = _ingest(proj, arg)
        line = _one_line(err)
        assert code == 1 and f"{arg}: no such file or directory" in line and "HF_HUB_OFFLINE is set" in line, err
        assert "save_to_disk" in line and "clone" in line
    assert _splits(proj) == Counter()


def test_hub_id_in_the_cache_reads_offline(hub_env, proj, tmp_path):
    """A Hub dataset prepared once (here: the cache of a local copy, moved to the Hub id's place) reads offline."""
    import datasets

    test_rows = _rows(2, "te")
    test_rows[1]["rejected"] = None
    repo = _repo(tmp_path / "somedata", {"train": _rows(3, "tr"), "test": test_rows})
    cache = hub_env / "datasets"
    datasets.load_dataset(str(repo), cache_dir=str(cache))
    prepared = next((cache / "somedata" / "default").glob("*/*/dataset_info.json")).parent
    target = cache / "someorg___somedata" / "default" / prepared.parent.name / prepared.name
    shutil.copytree(prepared, target)
    code, _, err = _ingest(proj, "someorg/somedata")
    assert code == 1 and _one_line(err).startswith("error: someorg/somedata:test row 2: field 'rejected' is null")
    code, report, err = _ingest(proj, "someorg/somedata@train")
    assert code == 0, err
    assert report["files"][0]["path"].endswith("someorg/somedata@train") and report["files"][0]["pairs"] == 3
    assert _splits(proj) == Counter({"train": 3})
    with open_project(proj) as project, project.store.read() as conn:  # the batch names the Hub id, not a path
        assert conn.scalars(select(IngestBatch.path)).all() == ["someorg/somedata@train"]
    code, _, err = _ingest(proj, "someorg/somedata@validation")
    assert code == 1 and "someorg/somedata@validation: no split 'validation' (splits: train, test)" in _one_line(err)


def test_folder_without_data_files_is_one_line(hub_env, proj, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "README.md").write_text("# just notes\n")
    expected = f"{folder}: a directory that is not a `datasets` save_to_disk folder, nor a dataset repository"
    code, _, err = _ingest(proj, str(folder))
    assert code == 1 and expected in _one_line(err)
    (folder / "notes.txt").write_text("plain text is no table of rows\n")
    code, _, err = _ingest(proj, str(folder))
    assert code == 1 and expected in _one_line(err) and "(it holds text data)" in err


def test_configs_and_splits_that_are_not_there_are_listed(hub_env, proj, tmp_path):
    repo = tmp_path / "multi"
    for config, splits in (("en", ["train"]), ("fr", ["train", "test"])):
        (repo / config).mkdir(parents=True)
        for split in splits:
            (repo / config / f"{split}.jsonl").write_text(json.dumps(_rows(1, f"{config}-{split}")[0]) + "\n")
    (repo / "README.md").write_text(
        "---\nconfigs:\n- config_name: en\n  data_files:\n  - split: train\n    path: en/train.jsonl\n"
        "- config_name: fr\n  data_files:\n  - split: train\n    path: fr/train.jsonl\n"
        "  - split: test\n    path: fr/test.jsonl\n---\n# two configs\n")
    expected = {str(repo): f"{repo}: the dataset has several configs; name one as {repo}:CONFIG (configs: en, fr)",
                f"{repo}:de": f"{repo}:de: no config 'de' (configs: en, fr)",
                f"{repo}:en@test": f"{repo}:en@test: no split 'test' (splits: train)"}
    for arg, message in expected.items():
        code, _, err = _ingest(proj, arg)
        assert code == 1 and _one_line(err) == f"error: {message}"
    code, report, err = _ingest(proj, f"{repo}:fr")
    assert code == 0 and report["files"][0]["pairs"] == 2, err


def test_a_loading_script_is_refused(hub_env, proj, tmp_path):
    repo = _repo(tmp_path / "scripted", {"train": _rows(1, "tr")}, kind="jsonl")
    (repo / "scripted.py").write_text("import datasets\n")
    code, _, err = _ingest(proj, str(repo))
    assert code == 1 and f"{repo}: the dataset is built by a loading script (scripted.py)" in _one_line(err)


@pytest.mark.parametrize(("arg", "expected"), [
    ("org/name", DatasetRef("org/name")),
    ("name", DatasetRef("name")),
    ("Org-1/name_2.v3:cfg.en@train", DatasetRef("Org-1/name_2.v3", "cfg.en", "train")),
    ("org/name@train[:10%]", DatasetRef("org/name", None, "train[:10%]")),
    ("absent.jsonl", None), ("org/data.parquet", None), ("a/b/c", None), ("/abs/name", None),
    ("org--x/name", None), ("-org/name", None), ("org/name.git", None), ("org/na me", None), ("org/né", None),
    ("org/name@", None), ("here", None), ("here/pool.jsonl.bak", None),
])
def test_what_counts_as_a_hub_id(tmp_path, monkeypatch, arg, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here").mkdir()  # what exists on disk is a path, whatever its name, and so is a name in its folder
    assert parse_ref(Path(arg)) == expected


def test_an_existing_folder_with_a_split_is_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert parse_ref(Path("org/name:en@test")) == DatasetRef("org/name", "en", "test", local=True)
