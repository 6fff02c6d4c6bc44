"""``curate export`` with an --out it cannot write (refused before anything is written) and ``--push-to-hub``
against a local stand-in Hub (``hub_standin``): the pushed splits equal the local export's rows, --private reaches
create_repo, the push is audited, and offline mode, HTTP and connection errors are one line without the token."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import free_port, private_copy
from hub_standin import StandIn

from curate import ingest_files, init_project

FAKE_TOKEN = "hf_standinFAKEtoken0123456789"
OFFLINE = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


@pytest.fixture(scope="module")
def labelled_base(tmp_path_factory) -> Path:
    """60 preference rows with the file's own labels, and round 1 selected: train (with --with-imported), test
    and calibration splits."""
    from curate.select.rounds import select_round

    folder = tmp_path_factory.mktemp("hub")
    data = folder / "prefs.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"Question {i}: which city is the capital of country {i}?",
                                        "chosen": f"The capital of country {i} is City {i}.",
                                        "rejected": f"I am not sure about country {i}, sorry."}) + "\n"
                            for i in range(60)), encoding="utf-8")
    root = folder / "proj"
    with init_project(root) as project:
        ingest_files(project, [data])
        select_round(project, budget=5, strategy="random")
    return root


@pytest.fixture
def labelled(labelled_base, tmp_path):
    yield from private_copy(labelled_base, tmp_path)


def curate(*args: object, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed ``curate`` as a user runs it, with ``env`` (huggingface_hub reads HF_ENDPOINT at import)."""
    exe = Path(sys.executable).with_name("curate")
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=300, env=env)


def hub_env(endpoint: str, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE and not k.startswith("HF_")}
    return {**env, "HF_ENDPOINT": endpoint, "HF_TOKEN": FAKE_TOKEN, "HF_HOME": str(home / "hf"),
            "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": "1", "COLUMNS": "200",
            **extra}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def export_audits(root: Path) -> list[dict]:
    from sqlalchemy import select

    from curate import open_project
    from curate.store.schema import AuditEntry

    with open_project(root) as project, project.store.read() as conn:
        return list(conn.scalars(select(AuditEntry.details).where(AuditEntry.action == "export")
                                 .order_by(AuditEntry.id)))


@pytest.mark.parametrize("name", ["x.csv", "x.json", "x.jsonl.gz", "prefs.txt"])
def test_an_out_with_an_extension_curate_cannot_write_is_refused_before_anything_is_written(labelled, tmp_path,
                                                                                            cli, name):
    folder = tmp_path / "out"
    folder.mkdir()
    code, _, err = cli("export", "--format", "dpo", "--with-imported", "--out", folder / name,
                       "--project", labelled.root)
    suffix = name[name.index("."):]
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert str(folder / name) in err and f"a {suffix} file" in err
    assert ".jsonl or .parquet" in err and "`datasets` folder" in err
    assert not list(folder.iterdir())  # no folder named x.csv, no .x.csv.versions
    assert not export_audits(labelled.root)


def test_push_to_hub_sends_the_rows_of_the_local_export_and_is_audited(labelled, tmp_path):
    import pyarrow.parquet as pq

    with StandIn() as hub:
        env = hub_env(hub.url, tmp_path)
        done = curate("export", "--format", "dpo", "--with-imported", "--lineage", "--weights", "--out",
                      tmp_path / "prefs.jsonl", "--push-to-hub", "org/prefs", "--private", "--project", labelled.root,
                      env=env)
        assert done.returncode == 0, done.stderr
        local = {s: read_jsonl(tmp_path / name) for s, name in
                 (("train", "prefs.jsonl"), ("test", "prefs.test.jsonl"), ("calibration", "prefs.calibration.jsonl"))}
        counts = ", ".join(f"{s} {len(r)}" for s, r in local.items())
        assert done.stdout.strip().splitlines()[-1] == f"pushed to {hub.url}/datasets/org/prefs ({counts})"
        assert hub.created == [{"name": "prefs", "organization": "org", "visibility": "private", "type": "dataset"}]
        files = hub.repos["org/prefs"].files
        assert sorted(files) == ["README.md", *(f"data/{s}-00000-of-00001.parquet"
                                                for s in ("calibration", "test", "train"))]
        for split, rows in local.items():
            pushed = pq.read_table(io.BytesIO(files[f"data/{split}-00000-of-00001.parquet"])).to_pylist()
            assert pushed == rows and len(rows) > 0
        assert "configs:" in files["README.md"].decode() and "split: calibration" in files["README.md"].decode()
        assert {auth for _, path, auth in hub.requests if "/org/" in path or path.startswith("/api/repos/")
                } == {f"Bearer {FAKE_TOKEN}"}  # the LFS upload URL is presigned on the real Hub: no token
        assert [u for u in hub.unknown if "agent-harnesses" not in u] == []
        sha = hub.repos["org/prefs"].sha
        assert FAKE_TOKEN not in done.stdout + done.stderr

        # --push-to-hub alone: nothing written here, a repo of the namespace's default visibility, same rows
        done = curate("export", "--format", "dpo", "--with-imported", "--push-to-hub", "org/only",
                      "--project", labelled.root, env=env)
        assert done.returncode == 0, done.stderr
        assert hub.created[-1] == {"name": "only", "organization": "org", "type": "dataset"}
        pushed = pq.read_table(io.BytesIO(hub.repos["org/only"].files["data/train-00000-of-00001.parquet"]))
        assert pushed.to_pylist() == [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in local["train"]]

        # --private never pushes to a repo that exists and is public
        commits = hub.repos["org/only"].sha
        done = curate("export", "--format", "dpo", "--with-imported", "--push-to-hub", "org/only", "--private",
                      "--project", labelled.root, env=env)
        assert done.returncode == 1 and "org/only: the dataset repo exists and is public" in done.stderr
        assert hub.repos["org/only"].sha == commits
    first, alone = export_audits(labelled.root)
    assert first["hub"] == {"repo_id": "org/prefs", "url": f"{hub.url}/datasets/org/prefs", "private": True,
                            "created": True, "commit_url": f"{hub.url}/datasets/org/prefs/commit/{sha}",
                            "commit_sha": sha, "rows": {s: len(r) for s, r in local.items()}}
    assert set(first["splits"]) == {"train", "test", "calibration"}
    assert alone["splits"] == {} and alone["hub"]["private"] is False and alone["hub"]["repo_id"] == "org/only"
    assert sorted(p.name for p in tmp_path.iterdir() if "only" in p.name) == []


def test_a_push_refused_offline_writes_nothing(labelled, tmp_path):
    with StandIn() as hub:
        done = curate("export", "--format", "dpo", "--with-imported", "--out", tmp_path / "prefs.jsonl",
                      "--push-to-hub", "org/prefs", "--project", labelled.root,
                      env=hub_env(hub.url, tmp_path, HF_HUB_OFFLINE="1"))
        assert hub.requests == []  # not one request
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "HF_HUB_OFFLINE is set" in done.stderr and "needs the network" in done.stderr
    assert not list(tmp_path.glob("*prefs*")) and not export_audits(labelled.root)


@pytest.mark.parametrize("status", [500, 401])
def test_a_hub_error_is_one_line_without_the_token_and_the_local_export_stays(labelled, tmp_path, status):
    with StandIn() as hub:
        hub.fail[r"/api/repos/create"] = status
        done = curate("export", "--format", "dpo", "--with-imported", "--out", tmp_path / "prefs.jsonl",
                      "--push-to-hub", "org/prefs", "--project", labelled.root, env=hub_env(hub.url, tmp_path))
    said = done.stdout + done.stderr
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, said
    assert "Traceback" not in said and FAKE_TOKEN not in said
    assert f"--push-to-hub org/prefs: the Hub answered HTTP {status}" in done.stderr
    assert "nothing was committed" in done.stderr and "prefs.jsonl was written" in done.stderr
    assert ("may write there" in done.stderr) == (status == 401)
    assert (tmp_path / "prefs.jsonl").exists() and "org/prefs" not in hub.repos
    (audited,) = export_audits(labelled.root)
    assert audited["hub"]["repo_id"] == "org/prefs" and f"HTTP {status}" in audited["hub"]["error"]


def test_an_unreachable_hub_is_one_line(labelled, tmp_path):
    done = curate("export", "--format", "sft", "--with-imported", "--push-to-hub", "org/prefs",
                  "--project", labelled.root, env=hub_env(f"http://127.0.0.1:{free_port()}", tmp_path))
    said = done.stdout + done.stderr
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, said
    assert "--push-to-hub org/prefs: cannot reach the Hub at http://127.0.0.1:" in done.stderr
    assert "Traceback" not in said and FAKE_TOKEN not in said and not export_audits(labelled.root)


def test_splits_are_pushed_with_one_schema_when_a_column_is_empty_in_one_of_them():
    from curate.export.hub import _dataset_dict

    rows = {"train": [{"prompt": "p", "round": 1, "annotators": ["bob"], "weight": 1.0}],
            "test": [{"prompt": "q", "round": None, "annotators": [], "weight": 0.5}]}
    splits = _dataset_dict(rows)
    assert splits["train"].features == splits["test"].features
    assert {s: d.to_list() for s, d in splits.items()} == rows
