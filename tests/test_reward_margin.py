"""The model committee (reward models, LoRA reward adapters) and the DPO margin, on tiny random Llamas
with SmolLM2's real tokenizer and real PandaLM text: batched numbers against one-at-a-time loops, the
CLI end to end, refusals of models that are not what they are asked to be."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_scores import talk

from curate import ingest_files, init_project, open_project, project_status
from curate.errors import CurateError
from curate.models import resolve_model
from curate.rendering import Rendering
from curate.scores.lm import load_causal_lm, load_reward_model, resolve_scorer
from curate.scores.reward import committee_margins, reward_scores, standardise


@pytest.fixture(scope="module")
def texts(samples) -> tuple[list[str], list[str]]:
    """Ten real PandaLM prompts and responses of mixed lengths."""
    with gzip.open(samples["pandalm"], "rt") as fh:
        rows = [json.loads(line) for line in fh]
    rows = [r for r in rows[:80] if isinstance(r["response1"], str) and r["response1"].strip()][::8][:10]
    return [f"{r['instruction']}\n\n{r['input']}".strip() for r in rows], [r["response1"] for r in rows]


@pytest.fixture
def pair_project(tmp_path, texts, model_cache) -> Path:
    """A project of six real PandaLM pairs."""
    with gzip.open(Path(__file__).resolve().parents[1] / "curate/samples/pandalm-sample.jsonl.gz", "rt") as fh:
        rows = [json.loads(line) for line in fh][:6]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{r['instruction']}\n\n{r['input']}".strip(),
                                        "a": str(r["response1"]) or "(empty)", "b": str(r["response2"]) or "(empty)"})
                            + "\n" for r in rows))
    root = tmp_path / "p"
    with init_project(root) as project:
        ingest_files(project, [data], mapping="prompt=prompt,a=a,b=b")
    return root


def one_reward(model, tokenizer, prompt: str, completion: str, max_length: int = 1024) -> float:
    ids = Rendering(tokenizer, name="test").encode(talk([prompt], [completion])[0], max_length=max_length).ids
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0, 0].item()


def test_batched_rewards_equal_one_at_a_time(tiny_models, texts, tmp_path):
    model, tokenizer = load_reward_model(resolve_model(str(tiny_models["reward1"])), cache=tmp_path)
    prompts, completions = texts
    batched = reward_scores(model, tokenizer, talk(prompts, completions))
    reference = [one_reward(model, tokenizer, p, c) for p, c in zip(prompts, completions, strict=True)]
    assert np.abs(batched[:, 0] - reference).max() < 1e-4
    assert len(set(np.round(batched[:, 0], 6))) == len(prompts)  # a real model: every text its own reward
    cut = reward_scores(model, tokenizer, talk(prompts, completions), max_length=40)
    assert cut[:, 1].sum() > 0  # truncated and counted, not crashed on
    assert np.abs(cut[:, 0] - [one_reward(model, tokenizer, p, c, 40) for p, c in zip(prompts, completions,
                                                                                      strict=True)]).max() < 1e-4


def test_a_lora_reward_adapter_loads_onto_its_base(tiny_models, texts, tmp_path):
    from peft import PeftModel
    from transformers import LlamaForSequenceClassification

    resolved = resolve_scorer(str(tiny_models["reward_lora"]), cache=tmp_path)
    assert resolved.fingerprint != resolve_model(str(tiny_models["reward_lora"])).fingerprint  # covers its base
    model, tokenizer = load_reward_model(resolved, cache=tmp_path)
    base = LlamaForSequenceClassification.from_pretrained(tiny_models["causal"], num_labels=1)
    expected = PeftModel.from_pretrained(base, tiny_models["reward_lora"]).eval()
    prompts, completions = texts
    ours = reward_scores(model, tokenizer, talk(prompts[:4], completions[:4]))[:, 0]
    theirs = [one_reward(expected, tokenizer, p, c) for p, c in zip(prompts[:4], completions[:4], strict=True)]
    assert np.abs(ours - theirs).max() < 1e-4
    with expected.disable_adapter():  # the adapter (LoRA and its trained head) really changes the base
        assert abs(one_reward(expected, tokenizer, prompts[0], completions[0]) - ours[0]) > 1e-3


def test_models_that_are_not_reward_models_are_refused(tiny_models, tmp_path):
    with pytest.raises(CurateError, match="is not a reward model: its architectures are LlamaForCausalLM"):
        load_reward_model(resolve_model(str(tiny_models["causal"])), cache=tmp_path)
    with pytest.raises(CurateError, match="is a CAUSAL_LM adapter, not a reward model"):
        load_reward_model(resolve_scorer(str(tiny_models["dpo_lora"]), cache=tmp_path), cache=tmp_path)
    with pytest.raises(CurateError, match="is a SEQ_CLS adapter, not a causal language model"):
        load_causal_lm(resolve_scorer(str(tiny_models["reward_lora"]), cache=tmp_path), cache=tmp_path)
    from transformers import AutoConfig, AutoTokenizer, LlamaForSequenceClassification

    two = tmp_path / "two-labels"
    config = AutoConfig.from_pretrained(tiny_models["reward1"], num_labels=2)
    LlamaForSequenceClassification(config).save_pretrained(two)
    AutoTokenizer.from_pretrained(tiny_models["reward1"]).save_pretrained(two)
    with pytest.raises(CurateError, match="has 2 outputs; a reward model has one"):
        load_reward_model(resolve_model(str(two)), cache=tmp_path)


def test_a_tokenizer_without_pad_token_is_fixed_up_with_its_end_token(tiny_models, texts, tmp_path):
    from transformers import AutoTokenizer

    unpadded = tmp_path / "unpadded"
    shutil.copytree(tiny_models["reward1"], unpadded)
    tokenizer = AutoTokenizer.from_pretrained(unpadded)
    tokenizer.pad_token = None
    tokenizer.save_pretrained(unpadded)
    config = json.loads((unpadded / "config.json").read_text())
    (unpadded / "config.json").write_text(json.dumps({**config, "pad_token_id": None}))
    assert AutoTokenizer.from_pretrained(unpadded).pad_token_id is None
    prompts, completions = texts
    fixed, fixed_tokenizer = load_reward_model(resolve_model(str(unpadded)), cache=tmp_path)
    assert fixed_tokenizer.pad_token == fixed_tokenizer.eos_token and fixed.config.pad_token_id is not None
    padded, padded_tokenizer = load_reward_model(resolve_model(str(tiny_models["reward1"])), cache=tmp_path)
    assert np.abs(reward_scores(fixed, fixed_tokenizer, talk(prompts, completions))
                  - reward_scores(padded, padded_tokenizer, talk(prompts, completions))).max() < 1e-5


def test_committee_margins_spread_is_the_disagreement():
    z = np.array([[1.0, 1.0, -1.0], [0.0, 0.0, 1.0], [0.5, -0.5, 0.0]])  # completions x models
    scores = committee_margins(z, np.array([0, 2]), np.array([1, 1]))
    np.testing.assert_allclose(scores["margin_mean"], [np.mean([1, 1, -2]), np.mean([0.5, -0.5, -1])])
    np.testing.assert_allclose(scores["margin_std"], [np.std([1, 1, -2]), np.std([0.5, -0.5, -1])])
    agree = committee_margins(np.array([[2.0, 2.0], [-1.0, -1.0]]), np.array([0]), np.array([1]))
    assert agree["margin_std"][0] == 0 and agree["vote_entropy"][0] < 1e-9 and agree["p_var"][0] == 0
    with pytest.raises(CurateError, match="same reward"):
        standardise(np.array([[1.0, 3.0], [1.0, 2.0]]))


def test_reward_models_end_to_end_through_the_cli(cli, pair_project, tiny_models):
    names = [str(tiny_models[n]) for n in ("reward1", "reward2", "reward_lora")]
    models = [a for n in names for a in ("--model", n)]
    code, out, err = cli("score", "reward-models", "--project", pair_project, *models, "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["pairs"] == 6 and first["completions"] >= 10
    assert set(first["computed"].values()) == {first["completions"]}
    with open_project(pair_project) as project:
        from curate.store import pool

        with project.store.read() as conn:
            rows, pairs = pool.completion_rows(conn), [(p, a, b) for p, _, a, b in pool.pairs(conn)]
        rewards = []
        for name in names:
            model, tokenizer = load_reward_model(resolve_scorer(name, cache=pair_project / "cache"),
                                                 cache=pair_project / "cache")
            rewards.append([one_reward(model, tokenizer, c.prompt.text, c.completion.text) for _, c in rows])
        z = np.array(rewards).T
        z = (z - z.mean(0)) / z.std(0)
        row = {r[0]: i for i, r in enumerate(rows)}
        margins = np.array([z[row[a]] - z[row[b]] for _, a, b in pairs])
        stored = _scores(project, first["run_id"])
        np.testing.assert_allclose([stored[p[0]]["margin_mean"] for p in pairs], margins.mean(1), atol=1e-4)
        np.testing.assert_allclose([stored[p[0]]["margin_std"] for p in pairs], margins.std(1), atol=1e-4)
        assert project_status(project)["scores"]["reward-models"]["stale"] is False
    code, out, _ = cli("score", "reward-models", "--project", pair_project, "--model", names[0], "--json")
    assert set(json.loads(out)["computed"].values()) == {0}  # cached per model and text
    config = json.loads((tiny_models["reward1"] / "config.json").read_text())
    (tiny_models["reward1"] / "config.json").write_text(json.dumps({**config, "initializer_range": 0.03}))
    try:
        with open_project(pair_project) as project:
            status = project_status(project)["scores"]["reward-models"]
    finally:
        (tiny_models["reward1"] / "config.json").write_text(json.dumps(config))
    assert status["stale"] is True and status["why"] == f"model {names[0]} changed since"
    code, _, err = cli("score", "reward-models", "--project", pair_project, "--model", str(tiny_models["causal"]))
    assert code == 1 and "is not a reward model" in err and "Traceback" not in err


def test_dpo_margin_end_to_end_equals_the_log_ratios(cli, pair_project, tiny_models):
    from peft import PeftModel
    from transformers import AutoTokenizer, LlamaForCausalLM

    code, out, err = cli("score", "margin", "--project", pair_project, "--policy", tiny_models["dpo_lora"],
                         "--beta", "0.5", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["reference"] == str(tiny_models["causal"]) and result["pairs"] == 6
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["causal"])
    policy = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(tiny_models["causal"]),
                                       tiny_models["dpo_lora"]).eval()
    with open_project(pair_project) as project:
        from curate.store import pool

        with project.store.read() as conn:
            rows, pairs = pool.completion_rows(conn), [(p, a, b) for p, _, a, b in pool.pairs(conn)]
        implicit = {}
        for cid, conversation in rows:
            with policy.disable_adapter():
                reference = _logprob(policy, tokenizer, conversation.prompt.text, conversation.completion.text)
            implicit[cid] = 0.5 * (_logprob(policy, tokenizer, conversation.prompt.text, conversation.completion.text)
                                   - reference)
        stored = _scores(project, result["run_id"])
    expected = np.array([implicit[a] - implicit[b] for _, a, b in pairs])
    assert np.abs(expected).max() > 1e-3  # the adapter changes the policy
    np.testing.assert_allclose([stored[p[0]]["margin"] for p in pairs], expected, atol=1e-3)
    np.testing.assert_allclose([stored[p[0]]["p_policy"] for p in pairs], 1 / (1 + np.exp(-expected)), atol=1e-3)
    code, _, err = cli("score", "margin", "--project", pair_project, "--policy", tiny_models["causal"])
    assert code == 1 and "is a whole model, not an adapter: name its reference model with --ref" in err
    code, _, err = cli("score", "margin", "--project", pair_project, "--policy", tiny_models["causal"],
                       "--ref", tiny_models["causal"])
    assert code == 1 and "are the same model" in err


def _logprob(model, tokenizer, prompt: str, completion: str) -> float:
    """log π(completion's tokens | chat-templated prompt), one example, no padding."""
    e = Rendering(tokenizer, name="test").encode(talk([prompt], [completion])[0], max_length=1024)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([e.prompt + e.completion])).logits[0].float()
    logp = torch.log_softmax(logits[len(e.prompt) - 1:-1], dim=-1)
    return logp.gather(-1, torch.tensor(e.completion)[:, None]).sum().item()


def _scores(project, run_id: int) -> dict[str, dict[str, float]]:
    from sqlalchemy import select

    from curate.store.schema import Score

    out: dict[str, dict[str, float]] = {}
    with project.store.read() as conn:
        for unit, name, value in conn.execute(select(Score.unit_id, Score.name, Score.value)
                                              .where(Score.run_id == run_id)):
            out.setdefault(unit, {})[name] = value
    return out


def test_a_reward_never_depends_on_its_batch_when_config_and_tokenizer_pad_differ(tiny_models, texts, tmp_path):
    """Padding uses the id the model's pooling skips (config.pad_token_id), not the tokenizer's."""
    odd = tmp_path / "odd-pad"
    shutil.copytree(tiny_models["reward1"], odd)
    config = json.loads((odd / "config.json").read_text())
    (odd / "config.json").write_text(json.dumps({**config, "pad_token_id": 0}))
    model, tokenizer = load_reward_model(resolve_model(str(odd)), cache=tmp_path)
    assert tokenizer.pad_token_id != model.config.pad_token_id
    prompts, completions = texts
    alone = reward_scores(model, tokenizer, talk(prompts[:1], completions[:1]))[0, 0]
    longest = max(range(len(completions)), key=lambda i: len(completions[i]))
    together = reward_scores(model, tokenizer, talk([prompts[0], prompts[longest]],
                                                    [completions[0], completions[longest]]))
    assert abs(together[0, 0] - alone) < 1e-5
