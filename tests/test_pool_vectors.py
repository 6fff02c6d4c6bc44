"""Embeddings (cache, two models, resume after a kill), clusters, near-duplicates, the map and drift."""

from __future__ import annotations

import gzip
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from curate import embed_pool, ingest_files, init_project, load_pool, open_project, project_status
from curate.errors import CurateError
from curate.pool.cluster import cluster_pool, describe_clusters, run_labels
from curate.pool.dedup import dedup_pool
from curate.pool.drift import drift_report
from curate.pool.maps import write_map
from curate.store.schema import NearDuplicate, Pair, Record


@pytest.fixture(scope="session")
def second_model(tmp_path_factory) -> Path:
    """A second, different sentence-transformers model: MiniLM cut to its first layer, saved locally."""
    from curate.models import resolve_model
    from curate.pool.embed import load_encoder

    encoder = load_encoder(resolve_model("sentence-transformers/all-MiniLM-L6-v2"))
    bert = encoder[0].auto_model
    bert.encoder.layer = bert.encoder.layer[:1]
    bert.config.num_hidden_layers = 1
    path = tmp_path_factory.mktemp("models") / "minilm-1-layer"
    encoder.save(str(path))
    return path


def _read(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_cache_hits_and_only_new_texts_are_embedded(ukp, samples):
    again = embed_pool(ukp)
    assert again.computed == 0 and again.cached == again.texts > 200
    ingest_files(ukp, [samples["pandalm"]])
    with ukp.store.read() as conn:
        from curate.pool.units import pool_units

        every = {t for f in ("prompt", "completion") for t in pool_units(conn, f).texts()}
    new = embed_pool(ukp)
    assert new.texts == len(every) and new.computed == len(every) - again.texts and new.computed > 0


def test_two_models_never_mix(ukp, second_model):
    first_units, first, _ = load_pool(ukp, "prompt")
    other = embed_pool(ukp, model=str(second_model))
    assert other.computed == other.texts  # nothing borrowed from the other model's cache
    units, vectors, resolved = load_pool(ukp, "prompt", model=str(second_model))
    assert units.ids == first_units.ids and vectors.shape == first.shape
    assert not np.allclose(vectors, first, atol=1e-3)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert len(list((ukp.root / "cache" / "embeddings").iterdir())) == 2
    assert embed_pool(ukp).computed == 0  # the default model's cache is untouched
    assert second_model.name in resolved.name


def test_models_kept_under_a_cache_folder_still_differ(tmp_path, second_model):
    """The Hugging Face hub keeps models under ~/.cache: their files are fingerprinted like any others."""
    from curate.models import resolve_model

    hub = tmp_path / ".cache" / "huggingface"
    shutil.copytree(second_model, hub / "one")
    shutil.copytree(second_model, hub / "two")
    (hub / "two" / "config.json").write_text((hub / "two" / "config.json").read_text().replace("1", "2", 1))
    (hub / "one" / ".cache").mkdir()  # a download's own metadata folder inside the model is ignored
    (hub / "one" / ".cache" / "lock").write_text("x")
    one, two = resolve_model(str(hub / "one")), resolve_model(str(hub / "two"))
    assert one.fingerprint == resolve_model(str(second_model)).fingerprint != two.fingerprint


def test_a_killed_run_resumes_without_recomputing(tmp_path, samples, ukp_embedded):
    root = tmp_path / "proj"
    with init_project(root) as project:
        ingest_files(project, [samples["ukp"]])
    code = (f"from curate import open_project, embed_pool\n"
            f"embed_pool(open_project({str(root)!r}), shard_size=8, batch_tokens=256)\n")
    proc = subprocess.Popen([sys.executable, "-c", code])
    cache = root / "cache" / "embeddings"
    deadline = time.time() + 240
    while time.time() < deadline and len(list(cache.glob("*/*.keys.npy"))) < 3 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    shards = len(list(cache.glob("*/*.keys.npy")))
    assert proc.returncode == -signal.SIGKILL and shards >= 3
    with open_project(root) as project:
        resumed = embed_pool(project)
        assert resumed.cached >= 8 * shards and resumed.computed == resumed.texts - resumed.cached
        _, vectors, _ = load_pool(project, "completion")
    with open_project(ukp_embedded) as clean:
        _, expected, _ = load_pool(clean, "completion")
    assert np.allclose(vectors, expected, atol=1e-4)


@pytest.mark.parametrize("name", ["no-such-org/no-such-model", "./not-a-folder", "nonsense"])
def test_unknown_model_is_a_one_line_error(cli, ukp, name):
    started = time.time()
    code, _, err = cli("embed", "--project", ukp.root, "--model", name)
    assert code == 1 and f"model '{name}'" in err and "never downloads" in err
    assert len(err.strip().splitlines()) == 1 and time.time() - started < 30


def test_empty_pool_and_bad_k_are_clear_errors(cli, tmp_path, ukp):
    cli("init", tmp_path / "empty")
    code, _, err = cli("embed", "--project", tmp_path / "empty")
    assert code == 1 and "the pool is empty" in err
    code, _, err = cli("cluster", "--project", tmp_path / "empty")
    assert code == 1 and "the pool has no prompts" in err
    for k, message in [("100000", "larger than the pool (200 pairs)"), ("1", "at least 2"), ("lots", "whole number")]:
        code, _, err = cli("cluster", "--project", ukp.root, "--k", k)
        assert code == 1 and message in err, err


def test_hdbscan_on_too_small_a_pool_is_a_clear_error(ukp):
    with pytest.raises(CurateError, match="too few for HDBSCAN clusters of 500"):
        cluster_pool(ukp, method="hdbscan", min_cluster_size=500)


def test_cluster_before_embed_says_what_to_run(cli, tmp_path, samples):
    cli("init", tmp_path / "p")
    cli("ingest", samples["ukp"], "--project", tmp_path / "p")
    code, _, err = cli("cluster", "--project", tmp_path / "p")
    assert code == 1 and "run `curate embed`" in err


def _debates(project, units) -> list[str]:
    with project.store.read() as conn:
        topic = {rid: meta["topic"] for rid, meta in conn.execute(select(Record.id, Record.meta))}
        record_of = dict(conn.execute(select(Pair.id, Pair.record_id)).all())
    return [topic[record_of[uid]].split("_")[0] for uid in units.ids]


def test_kmeans_clusters_follow_the_debates_and_are_described(ukp):
    from sklearn.metrics import adjusted_rand_score

    summary = cluster_pool(ukp, k="auto")
    units, _, _ = load_pool(ukp)
    labels = run_labels(ukp, summary.run_id, units)
    assert summary.config["auto_k"]["silhouette"] and summary.k >= 2
    assert adjusted_rand_score(_debates(ukp, units), labels) > 0.6
    run, clusters = describe_clusters(ukp)
    assert run.id == summary.run_id and sum(c.size for c in clusters) == len(units) == 200
    assert all(c.keywords and 1 <= len(c.examples) <= 3 for c in clusters)


def test_hdbscan_keeps_noise_as_its_own_group(ukp):
    summary = cluster_pool(ukp, method="hdbscan")
    units, _, _ = load_pool(ukp)
    labels = run_labels(ukp, summary.run_id, units)
    assert (labels > -2).all()  # every unit stored, noise included
    assert sum(summary.sizes.values()) == len(units)
    _, clusters = describe_clusters(ukp)
    assert {c.cluster for c in clusters} == set(summary.sizes)


def test_dedup_marks_planted_duplicates_and_keeps_the_judged_one(tmp_path, samples):
    rows = _read(samples["pandalm"])[:60]
    lines = [{"id": f"o{r['idx']}", "q": r["instruction"] + "\n" + r["input"], "x": str(r["response1"]),
              "y": str(r["response2"]), "w": 1} for r in rows if r["response1"] and r["response2"]]
    exact = [dict(line, id=line["id"] + "-copy", w=None) for line in lines[:5]]
    near = [dict(line, id=line["id"] + "-near", x=line["x"] + " ", y=line["y"].upper() + "!", w=None)
            for line in lines[5:10]]
    other = [dict(line, id=line["id"] + "-other", x="Something else entirely, about cooking pasta.", w=None)
             for line in lines[10:12]]  # same prompt, another completion: not a duplicate
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if v is not None}) + "\n"
                            for r in lines + exact + near + other))
    with init_project(tmp_path / "p") as project:
        ingest_files(project, [path], mapping="id=id,prompt=q,a=x,b=y")
        labelled = tmp_path / "labels.jsonl"
        labelled.write_text("".join(json.dumps(r) + "\n" for r in lines))
        ingest_files(project, [labelled], mapping="id=id,prompt=q,a=x,b=y,label=w", label_values="1=a")
        embed_pool(project)
        pairs_before = project_status(project)["pairs"]
        result = dedup_pool(project, threshold=0.95)
        with project.store.read() as conn:
            marks = conn.execute(select(NearDuplicate.unit_id, NearDuplicate.representative_id)).all()
        with project.store.read() as conn:
            key_of = dict(conn.execute(select(Pair.id, Pair.source_key)).all())
        marked = {key_of[u].split(":", 1)[1] for u, _ in marks}
        kept = {key_of[r].split(":", 1)[1] for _, r in marks}
        assert {r["id"] for r in exact + near} <= marked  # every planted copy is found
        assert not marked & {r["id"] for r in other}  # sharing a prompt is not enough
        assert kept <= {r["id"] for r in lines}  # the judged originals are kept
        assert all(s >= 0.95 for g in result.groups for _, s in g.members)
        assert project_status(project)["pairs"] == pairs_before  # nothing deleted
        assert project_status(project)["near_duplicates"] == result.marked == len(marks)
        strict = dedup_pool(project, threshold=0.9999)  # a new run replaces the marks
        seen, repeats = set(), 0
        for r in lines:  # PandaLM itself repeats a few comparisons word for word
            key = (" ".join(r["q"].split()), frozenset((r["x"].strip(), r["y"].strip())))
            repeats += key in seen
            seen.add(key)
        assert strict.marked == len(exact) + repeats == project_status(project)["near_duplicates"]


def test_map_writes_png_html_and_coordinates(ukp):
    cluster_pool(ukp, k=4)
    result = write_map(ukp, method="pca")
    assert result.method == "pca" and result.points == 200
    assert result.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = result.html.read_text()
    assert "plotly" in html and "cluster 3" in html
    with open(result.csv) as fh:
        lines = fh.read().splitlines()
    assert lines[0] == "unit_id,x,y,cluster" and len(lines) == 201
    assert {line.rsplit(",", 1)[1] for line in lines[1:]} == {"0", "1", "2", "3"}


@pytest.mark.slow
def test_map_uses_umap_by_default(ukp):
    assert write_map(ukp).method == "umap"


def test_drift_on_the_samples(tmp_path, samples, ukp_embedded):
    rows = _read(samples["ukp"])
    (tmp_path / "first.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[::2]))
    (tmp_path / "second.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[1::2]))
    with init_project(tmp_path / "p") as project:
        shutil.copytree(ukp_embedded / "cache" / "embeddings", project.root / "cache" / "embeddings")
        ingest_files(project, [tmp_path / "first.jsonl"])
        same = drift_report(project, tmp_path / "second.jsonl", permutations=99)
        other = drift_report(project, samples["pandalm"], permutations=99)
        pairs = drift_report(project, samples["pandalm"], field_name="pair", permutations=99)
    assert same.verdict == "no drift" and same.auc < 0.6
    assert other.verdict == "drifted" and other.auc > 0.9 and other.p_value <= 0.01
    assert pairs.verdict == "drifted"


def test_drift_rejects_a_bad_file_and_a_wrong_field(tmp_path, ukp):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n{"prompt": ""}\n')
    with pytest.raises(CurateError, match=":2: field 'prompt' is empty"):
        drift_report(ukp, bad)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"question {i}"}) + "\n" for i in range(10)))
    with pytest.raises(CurateError, match="not every row is a pair"):
        drift_report(ukp, prompts, field_name="pair")


@pytest.mark.slow
def test_acceptance_on_ukp_dev_and_hh(tmp_path, shared_data):
    """The issue's acceptance run: UKP dev end to end; hh (300 rows) against UKP drifts; UKP half against half
    does not."""
    from sklearn.metrics import adjusted_rand_score

    rows = _read(shared_data / "ukp-convarg1-dev.jsonl.gz")
    (tmp_path / "even.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[::2]))
    (tmp_path / "odd.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[1::2]))
    with init_project(tmp_path / "full") as project:
        ingest_files(project, [shared_data / "ukp-convarg1-dev.jsonl.gz"])
        embed_pool(project)
        summary = cluster_pool(project)
        units, _, _ = load_pool(project)
        assert adjusted_rand_score(_debates(project, units), run_labels(project, summary.run_id, units)) > 0.9
        assert dedup_pool(project).marked >= 228  # the comparisons UKP repeats under other ids, at least
        assert write_map(project, method="pca").points == 8893
        cache = project.root / "cache" / "embeddings"
        hh_rows = _read(shared_data / "hh-rlhf-harmless-test-dev.jsonl.gz")[:300]  # enough to tell, cheap to embed
        (tmp_path / "hh.jsonl").write_text("".join(json.dumps(r) + "\n" for r in hh_rows))
        hh = drift_report(project, tmp_path / "hh.jsonl")
    assert hh.verdict == "drifted" and hh.auc > 0.95
    with init_project(tmp_path / "half") as project:
        shutil.copytree(cache, project.root / "cache" / "embeddings")
        ingest_files(project, [tmp_path / "even.jsonl"])
        half = drift_report(project, tmp_path / "odd.jsonl")
    assert half.verdict == "no drift"
