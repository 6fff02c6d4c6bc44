"""Token entropy on the packaged SmolLM2: batched numbers equal a one-at-a-time loop; the CLI end to end."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from curate import ingest_files, init_project, open_project, project_status
from curate.scores.entropy import STATS, encode, load_causal_lm, token_entropy


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """A cache folder holding the packaged SmolLM2, dequantised once for the session."""
    from curate.models import DEFAULT_POLICY, resolve_model

    cache = tmp_path_factory.mktemp("cache")
    resolve_model(DEFAULT_POLICY, cache=cache)
    return cache


@pytest.fixture(scope="session")
def smollm2(model_cache):
    from curate.models import DEFAULT_POLICY, resolve_model

    return load_causal_lm(resolve_model(DEFAULT_POLICY, cache=model_cache))


@pytest.fixture(scope="session")
def examples(samples) -> tuple[list[str], list[str]]:
    """Twelve real PandaLM prompts and responses of mixed lengths, an empty response among them."""
    with gzip.open(samples["pandalm"], "rt") as fh:
        rows = [json.loads(line) for line in fh]
    rows = [r for r in rows if isinstance(r["response1"], str)]
    empty = next(r for r in rows if not r["response1"].strip())
    answered = sorted((r for r in rows[:60] if r["response1"].strip()), key=lambda r: len(r["response1"]))
    chosen = [*answered[::5][:11], empty]
    return [f"{r['instruction']}\n\n{r['input']}".strip() for r in chosen], [r["response1"] for r in chosen]


def naive_entropy(model, tokenizer, prompt: str, completion: str, max_length: int = 1024) -> list[float]:
    """One example at a time, no padding, the full logits: the reference the batched code must match."""
    import torch

    e = encode(tokenizer, prompt, completion, max_length=max_length)
    with torch.no_grad():
        logits = model(torch.tensor([e.prompt + e.completion])).logits[0].float()
    logp = torch.log_softmax(logits[len(e.prompt) - 1:len(e.prompt) - 1 + len(e.completion)], dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)
    actual = logp.gather(-1, torch.tensor(e.completion)[:, None]).squeeze(-1)
    return [entropy.mean().item(), entropy.max().item(), entropy.sum().item(), actual.mean().item(),
            len(e.completion), float(e.truncated)]


@pytest.mark.slow
def test_batched_entropy_equals_the_naive_loop(smollm2, examples):
    model, tokenizer = smollm2
    prompts, completions = examples
    batched = token_entropy(model, tokenizer, prompts, completions)
    reference = np.array([naive_entropy(model, tokenizer, p, c) for p, c in zip(prompts, completions, strict=True)])
    assert batched.shape == (12, len(STATS))
    assert np.abs(batched - reference).max() < 1e-4
    assert batched[-1, STATS.index("tokens")] == 1  # the empty response: its end token only
    assert (batched[:, STATS.index("entropy_max")] >= batched[:, STATS.index("entropy_mean")]).all()


@pytest.mark.slow
def test_long_examples_are_truncated_and_counted(smollm2, examples):
    model, tokenizer = smollm2
    prompts, completions = examples
    cut = token_entropy(model, tokenizer, prompts, completions, max_length=48)
    reference = np.array([naive_entropy(model, tokenizer, p, c, max_length=48) for p, c in zip(prompts, completions,
                                                                                                strict=True)])
    assert cut[:, STATS.index("truncated")].sum() > 0
    assert (cut[:, STATS.index("tokens")] <= 47).all()
    assert np.abs(cut - reference).max() < 1e-4


@pytest.mark.slow
def test_a_tokenizer_without_pad_token_pads_with_its_end_token(smollm2, examples):
    model, tokenizer = smollm2
    prompts, completions = examples
    expected = token_entropy(model, tokenizer, prompts[:4], completions[:4])
    pad = tokenizer.pad_token
    tokenizer.pad_token = None
    try:
        assert tokenizer.pad_token_id is None
        assert np.abs(token_entropy(model, tokenizer, prompts[:4], completions[:4]) - expected).max() < 1e-5
    finally:
        tokenizer.pad_token = pad


@pytest.mark.slow
def test_score_entropy_end_to_end_cached_and_stale(cli, tmp_path, model_cache):
    import shutil

    root = tmp_path / "p"
    rows = [{"prompt": f"What is {i} + {i}?", "chosen": f"It is {2 * i}.", "rejected": "No idea."} for i in range(5)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with init_project(root) as project:
        shutil.copytree(model_cache / "models", root / "cache" / "models")  # the dequantised model, reused
        ingest_files(project, [tmp_path / "d.jsonl"])
    code, out, err = cli("score", "entropy", "--project", root, "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["completions"] == first["computed"] == 10 and first["truncated"] == 0
    code, out, _ = cli("score", "entropy", "--project", root, "--json")
    assert json.loads(out)["computed"] == 0 and json.loads(out)["cached"] == 10
    with open_project(root) as project:
        assert project_status(project)["scores"]["entropy"]["stale"] is False
        (tmp_path / "e.jsonl").write_text(json.dumps({"prompt": "Name a colour.", "completion": "Blue."}) + "\n")
        ingest_files(project, [tmp_path / "e.jsonl"])
        status = project_status(project)["scores"]["entropy"]
    assert status["stale"] is True and "+1 completions since" in status["why"]


def test_empty_pool_cannot_be_scored(cli, tmp_path):
    cli("init", tmp_path / "p")
    code, _, err = cli("score", "entropy", "--project", tmp_path / "p")
    assert code == 1 and "no completions to score" in err
