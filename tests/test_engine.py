"""The Ray engine against the local one, on a real Ray started here (2 CPUs): the same embeddings, LM states
and token entropy within 1e-5, a run killed midway resumed without recomputing what it cached, and the CLI's
one-line errors for what the cluster lacks."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from functools import partial

import numpy as np
import pytest

from curate.compute import Compute
from curate.rendering import Content, Conversation

pytestmark = pytest.mark.slow
RAY = Compute("cpu", "float32", engine="ray", actors=2)


@pytest.fixture(scope="module")
def ray_address():
    """A Ray on this machine with 2 CPUs for this module (the engine connects to the one running here)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def hh_rows(shared_data) -> list[tuple[str, Conversation]]:
    """40 hh-rlhf dev completions in their (multi-turn) prompts, as ingest reads them."""
    from curate.ingest.rows import prompt_text

    rows = []
    with gzip.open(shared_data / "hh-rlhf-harmless-test-dev.jsonl.gz", "rt", encoding="utf-8") as fh:
        for n, line in zip(range(20), fh, strict=False):
            record = json.loads(line)
            cut = record["chosen"].rfind("Assistant:") + len("Assistant:")
            prompt = prompt_text(record["chosen"][:cut])
            content = Content(prompt.text, prompt.messages)
            for side in ("chosen", "rejected"):
                rows.append((f"{n}{side}", Conversation(content, Content(record[side][cut:].strip() or "-"))))
    return rows


def test_ray_embeddings_equal_the_local_engine(ray_address, shared_data, tmp_path):
    from curate.models import resolve_model
    from curate.pool.embed import EmbeddingCache, embed_texts, vectors_for

    with gzip.open(shared_data / "hh-rlhf-harmless-test-dev.jsonl.gz", "rt", encoding="utf-8") as fh:
        texts = [json.loads(line)["chosen"] for _, line in zip(range(60), fh, strict=False)]
    model = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    local, ray = EmbeddingCache(tmp_path / "local", model), EmbeddingCache(tmp_path / "ray", model)
    embed_texts(texts, model, local, shard_size=16)
    result = embed_texts(texts, model, ray, shard_size=16, compute=RAY)
    assert result.computed == len(set(texts)) and len(list((tmp_path / "ray").rglob("*.vec.npy"))) == 4
    np.testing.assert_allclose(vectors_for(texts, ray), vectors_for(texts, local), atol=1e-5)


def test_ray_lm_states_and_entropy_equal_the_local_engine(ray_address, hh_rows, model_cache, tmp_path):
    from curate.models import DEFAULT_POLICY
    from curate.scores.entropy import token_entropy
    from curate.scores.lm import load_causal_lm, resolve_scorer
    from curate.scores.runs import cached_completion_scores
    from curate.scores.states import lm_states

    model = resolve_scorer(DEFAULT_POLICY, cache=model_cache)
    for kind, score in (("entropy", token_entropy), ("states/layer-20", partial(lm_states, layer=20))):
        got = {}
        for name, compute in (("local", Compute()), ("ray", RAY)):
            got[name], computed = cached_completion_scores(tmp_path / name, model, hh_rows, kind=kind,
                                                           load=load_causal_lm, score=score, max_length=512, shard=8,
                                                           compute=compute)
            assert computed == len(hh_rows)
        np.testing.assert_allclose(got["ray"], got["local"], atol=1e-5, rtol=1e-5, err_msg=kind)


KILLED_RUN = """
import pickle, sys
from curate.compute import Compute
from curate.scores.entropy import token_entropy
from curate.scores.lm import load_causal_lm
from curate.scores.runs import cached_completion_scores

model, rows, root = pickle.load(open(sys.argv[1], "rb"))
cached_completion_scores(root, model, rows, kind="entropy", load=load_causal_lm, score=token_entropy,
                         max_length=512, shard=2, compute=Compute("cpu", "float32", engine="ray", actors=2))
"""


def test_a_ray_run_killed_midway_resumes_from_its_cache(ray_address, hh_rows, model_cache, tmp_path):
    """A driver killed (SIGKILL) while its actors score: what it cached stays, the next run computes the rest."""
    import pickle

    from curate.models import DEFAULT_POLICY
    from curate.pool.embed import EmbeddingCache
    from curate.scores.entropy import token_entropy
    from curate.scores.lm import load_causal_lm, resolve_scorer
    from curate.scores.runs import cached_completion_scores

    model = resolve_scorer(DEFAULT_POLICY, cache=model_cache)
    (tmp_path / "job.pkl").write_bytes(pickle.dumps((model, hh_rows, tmp_path / "cache")))
    child = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(tmp_path / "job.pkl")],
                             env={**os.environ, "RAY_ADDRESS": ray_address}, stderr=subprocess.PIPE, text=True)
    shards = tmp_path / "cache" / "scores" / "entropy"
    deadline = time.monotonic() + 240
    while child.poll() is None and time.monotonic() < deadline and len(list(shards.rglob("*.keys.npy"))) < 2:
        time.sleep(0.05)
    assert child.poll() is None, f"the run ended before it was killed: {child.stderr.read()[-2000:]}"
    child.send_signal(signal.SIGKILL)
    child.wait()
    cached = len(EmbeddingCache(tmp_path / "cache", model, kind="scores/entropy"))
    assert 0 < cached < len(hh_rows)

    resumed, computed = cached_completion_scores(tmp_path / "cache", model, hh_rows, kind="entropy",
                                                 load=load_causal_lm, score=token_entropy, max_length=512, shard=2,
                                                 compute=RAY)
    assert computed == len(hh_rows) - cached
    fresh, _ = cached_completion_scores(tmp_path / "local", model, hh_rows, kind="entropy", load=load_causal_lm,
                                        score=token_entropy, max_length=512, shard=64)
    np.testing.assert_allclose(resumed, fresh, atol=1e-5, rtol=1e-5)


def test_the_cli_runs_on_ray_and_refuses_what_the_cluster_lacks(ray_address, cli, tmp_path, tiny_models):
    from curate import open_project
    from curate.store.scores import latest_runs

    cli("init", tmp_path / "p")
    rows = [{"prompt": f"Question {i}?", "chosen": f"Answer {i}.", "rejected": "No."} for i in range(6)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("ingest", tmp_path / "d.jsonl", "--project", tmp_path / "p")
    code, out, err = cli("score", "entropy", "--model", tiny_models["causal"], "--engine", "ray", "--json",
                         "--project", tmp_path / "p")
    assert code == 0, err
    assert json.loads(out)["computed"] == 12  # each answer in its prompt
    code, out, err = cli("embed", "--engine", "ray", "--json", "--project", tmp_path / "p")
    assert code == 0 and json.loads(out)["computed"] == 13, err
    with open_project(tmp_path / "p") as project, project.store.read() as conn:
        assert latest_runs(conn)["entropy"].config["engine"] == "ray"
    # generation: the batches spread over the actors sample what the local engine samples (same seeds per batch)
    import shutil

    from sqlalchemy import select

    from curate.store.schema import Completion

    shutil.copytree(tmp_path / "p", tmp_path / "q")
    generated = {}
    for project_dir, engine in ((tmp_path / "p", "ray"), (tmp_path / "q", "local")):
        code, out, err = cli("generate", "--model", tiny_models["causal"], "--n", "3", "--max-new-tokens", "8",
                             "--batch-size", "2", "--engine", engine, "--json", "--project", project_dir)
        assert code == 0 and json.loads(out)["prompts"] == 6, err
        with open_project(project_dir) as project, project.store.read() as conn:
            generated[engine] = sorted(conn.execute(select(Completion.id, Completion.text).where(
                Completion.origin == "generated")).all())
    assert generated["ray"] == generated["local"] and len(generated["ray"]) >= 6

    # a model refused on an actor (a causal LM is not a reward model) is the same one line as on the local engine
    code, _, local = cli("score", "reward-models", "--model", tiny_models["causal"], "--project", tmp_path / "p")
    assert code == 1 and len(local.strip().splitlines()) == 1
    code, _, err = cli("score", "reward-models", "--model", tiny_models["causal"], "--engine", "ray", "--project",
                       tmp_path / "p")
    assert code == 1 and err.strip() == local.strip().replace("error: ", "error: on the Ray cluster: ", 1), err
    for args, says in ((("--engine", "ray", "--device", "cuda"), "the Ray cluster has no GPUs"),
                       (("--engine", "ray", "--device", "cuda:1"), "Ray assigns each actor its GPU"),
                       (("--engine", "spark"), "engine 'spark' is not one of local, ray")):
        code, _, err = cli("score", "entropy", *args, "--project", tmp_path / "p")
        assert code == 1 and says in err and len(err.strip().splitlines()) == 1, (args, err)
