"""Where model work runs: devices resolved or refused in one line, precision by device, token-budget embedding
batches equal to fixed ones, and bfloat16 scores within the documented tolerance of float32."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import torch

from curate.compute import Compute, model_dtype, resolve_device
from curate.errors import ConfigError, CurateError

NO_GPU = not torch.cuda.is_available()


def test_devices_resolve_or_are_refused_in_one_line():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in (("cuda:0",) if torch.cuda.is_available() else ("cpu", "mps"))
    for bad in ("gpu", "cuda:x", "CUDA", "cuda:"):
        with pytest.raises(CurateError, match=f"device '{bad}' is not one of auto, cpu, cuda, cuda:N or mps"):
            resolve_device(bad)
    assert model_dtype("cpu") == torch.float32 and model_dtype("cpu", "bfloat16") == torch.bfloat16
    assert Compute.of("cpu", "bfloat16").describe() == {"device": "cpu", "dtype": "bfloat16"}
    with pytest.raises(CurateError, match="dtype 'half' is not one of auto, float32, bfloat16, float16"):
        Compute.of("cpu", "half")


@pytest.mark.skipif(not NO_GPU, reason="this machine has a CUDA GPU")
def test_a_gpu_this_machine_lacks_is_a_one_line_error():
    assert resolve_device("auto") in ("cpu", "mps")
    for spec in ("cuda", "cuda:1"):
        with pytest.raises(CurateError, match=rf"device '{spec}' was asked for, but torch .* sees no CUDA GPU"):
            resolve_device(spec)


@pytest.mark.skipif(not NO_GPU, reason="this machine has a CUDA GPU")
def test_the_cli_refuses_an_absent_device_before_any_work(cli, tmp_path, tiny_models):
    from curate import open_project
    from curate.config import update_config

    cli("init", tmp_path / "p")
    (tmp_path / "d.jsonl").write_text(json.dumps({"prompt": "Hi", "chosen": "Hello.", "rejected": "Go."}) + "\n")
    cli("ingest", tmp_path / "d.jsonl", "--project", tmp_path / "p")
    for command in (("score", "entropy"), ("embed",), ("generate", "--model", tiny_models["causal"]),
                    ("train", "dpo-lora", "--with-imported", "--dry-run")):
        code, _, err = cli(*command, "--project", tmp_path / "p", "--device", "cuda")
        assert code == 1 and "device 'cuda' was asked for" in err and len(err.strip().splitlines()) == 1, command
    code, _, err = cli("simulate", tmp_path / "d.jsonl", "--device", "cuda:0")
    assert code == 1 and len(err.strip().splitlines()) == 1
    update_config(tmp_path / "p" / "curate.toml", "compute", device="cuda")
    code, _, err = cli("score", "entropy", "--project", tmp_path / "p")
    assert code == 1 and "device 'cuda' was asked for" in err
    with open_project(tmp_path / "p") as project:
        assert project.config.compute.device == "cuda"
        from curate.store.model_versions import versions_of_kind
        from curate.store.scores import latest_runs

        with project.store.read() as conn:
            assert latest_runs(conn) == {}  # nothing was scored
            assert all(versions_of_kind(conn, kind=k) == [] for k in ("policy", "embedding"))  # nor models registered
    with pytest.raises(ConfigError, match=r"\[compute\] device 'gpu' is not one of"):
        update_config(tmp_path / "p" / "curate.toml", "compute", device="gpu")
    with pytest.raises(ConfigError, match=r"\[compute\] generation must be one of auto, transformers, vllm"):
        update_config(tmp_path / "p" / "curate.toml", "compute", generation="vLLM")


def test_token_budget_batches_embed_as_fixed_batches_do(shared_data, tmp_path):
    """hh-rlhf dev texts of very different lengths: batches by a token budget give the vectors that
    sentence-transformers' own fixed batches give, and hold at most the budget each."""
    from curate.models import resolve_model
    from curate.pool.embed import EmbeddingCache, embed_texts, load_encoder, token_batches, vectors_for

    with gzip.open(shared_data / "hh-rlhf-harmless-test-dev.jsonl.gz", "rt", encoding="utf-8") as fh:
        texts = [json.loads(line)["chosen"] for _, line in zip(range(150), fh, strict=False)]
    texts = list(dict.fromkeys([*texts, *(t.split("Assistant:")[-1].strip() or "empty" for t in texts)]))
    model = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    encoder = load_encoder(model)
    fixed = encoder.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    batches = token_batches(encoder, texts, 2048)
    lengths = [len(ids) for ids in encoder.tokenizer(texts, truncation=True, max_length=encoder.max_seq_length)[
        "input_ids"]]
    assert sorted(i for b in batches for i in b) == list(range(len(texts)))
    assert all(len(b) * max(lengths[i] for i in b) <= 2048 for b in batches)
    assert min(len(b) for b in batches) < 16 < max(len(b) for b in batches)  # long texts few, short ones many
    cache = EmbeddingCache(tmp_path, model)
    embed_texts(texts, model, cache, batch_tokens=2048, encoder=encoder)
    assert np.abs(vectors_for(texts, cache) - fixed).max() < 1e-5


@pytest.mark.slow
def test_bfloat16_scores_stay_within_the_documented_tolerance(model_cache, samples):
    """SmolLM2 in bfloat16 (as on a GPU; here on the CPU) against float32 on twelve real PandaLM examples: within
    the tolerance README's GPU section gives."""
    from test_scores import talk

    from curate.models import DEFAULT_POLICY, resolve_model
    from curate.scores.entropy import STATS, token_entropy
    from curate.scores.lm import load_causal_lm
    from curate.scores.states import lm_states

    with gzip.open(samples["pandalm"], "rt") as fh:
        rows = [r for r in map(json.loads, fh) if isinstance(r["response1"], str) and r["response1"].strip()][:12]
    conversations = talk([f"{r['instruction']}\n\n{r['input']}".strip() for r in rows], [r["response1"] for r in rows])
    resolved = resolve_model(DEFAULT_POLICY, cache=model_cache)
    full, tokenizer = load_causal_lm(resolved, cache=model_cache)
    half, _ = load_causal_lm(resolved, cache=model_cache, compute=Compute("cpu", "bfloat16"))
    assert next(half.parameters()).dtype == torch.bfloat16 and next(full.parameters()).dtype == torch.float32
    exact, approx = token_entropy(full, tokenizer, conversations), token_entropy(half, tokenizer, conversations)
    mean = STATS.index("entropy_mean")
    gap = np.abs(exact[:, mean] - approx[:, mean])
    print(f"bfloat16 vs float32 entropy_mean: max gap {gap.max():.4f} (mean {exact[:, mean].mean():.3f}), "
          f"correlation {np.corrcoef(exact[:, mean], approx[:, mean])[0, 1]:.4f}")
    assert gap.max() < 0.05 and np.corrcoef(exact[:, mean], approx[:, mean])[0, 1] > 0.999
    states = [lm_states(m, tokenizer, conversations, layer=20) for m in (full, half)]
    cosine = (states[0] * states[1]).sum(1) / np.linalg.norm(states[0], axis=1) / np.linalg.norm(states[1], axis=1)
    print(f"bfloat16 vs float32 LM states: cosine min {cosine.min():.4f}")
    assert cosine.min() > 0.999


def test_precision_keeps_caches_apart_and_the_margin_runs_in_float32(cli, tmp_path, tiny_models):
    """A project in bfloat16 scores entropy in bfloat16 (its own cache, recorded in the run), while the margin runs
    both models in float32 whatever [compute] says."""
    from curate import open_project
    from curate.config import update_config
    from curate.store.scores import latest_runs

    root = tmp_path / "p"
    cli("init", root)
    rows = [{"prompt": f"What is {i} + {i}?", "chosen": f"It is {2 * i}.", "rejected": "No idea."} for i in range(3)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("ingest", tmp_path / "d.jsonl", "--project", root)
    update_config(root / "curate.toml", "compute", device="cpu", dtype="bfloat16")
    assert cli("score", "entropy", "--project", root, "--model", tiny_models["causal"])[0] == 0
    code, _, err = cli("score", "margin", "--project", root, "--policy", tiny_models["dpo_lora"])
    assert code == 0, err
    with open_project(root) as project, project.store.read() as conn:
        runs = latest_runs(conn)
    assert (runs["entropy"].config["device"], runs["entropy"].config["dtype"]) == ("cpu", "bfloat16")
    assert runs["margin"].config["dtype"] == "float32"
    kinds = {p.name for p in (root / "cache" / "scores").iterdir()}
    assert {"entropy", "entropy@bfloat16"} <= kinds  # the margin's float32 passes never read bfloat16 scores


def test_no_model_is_loaded_to_fetch_hub_kernels(tiny_models, model_cache, judged):
    """transformers kernelizes a model from the Hub when it trains or runs on a GPU (offline, that download fails
    the run; seen on an H200): every model curate loads, to embed, score or train, has Hub kernels off."""
    from curate.models import DEFAULT_EMBEDDING, resolve_model
    from curate.pool.embed import load_encoder
    from curate.scores.lm import load_causal_lm, load_reward_model
    from curate.train.training import _load, plan_training

    loaded = [load_causal_lm(resolve_model(str(tiny_models["dpo_lora"]), cache=model_cache), cache=model_cache)[0],
              load_reward_model(resolve_model(str(tiny_models["reward1"]), cache=model_cache), cache=model_cache)[0]]
    for recipe in ("reward-lora", "dpo-lora"):
        plan = plan_training(judged, recipe, round_number=1, overrides=[f"model={tiny_models['causal']}"],
                             device="cpu", dry_run=True)
        loaded.append(_load(plan, None, torch.float32)[1])
    loaded.append(load_encoder(resolve_model(DEFAULT_EMBEDDING, cache=model_cache))[0].auto_model)
    bases = [model.get_base_model() if hasattr(model, "get_base_model") else model for model in loaded]
    assert [base.use_kernels for base in bases] == [False] * 5
