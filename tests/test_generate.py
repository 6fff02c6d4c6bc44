"""The loop closed on UKP dev's round 1 with a tiny random Llama: train a DPO adapter, ``curate generate``
fresh completions with it (stored with the generation run and model version, resumable), score them with the
new model, select round 2, and ``curate status`` traces every artifact to its round. A reward-lora adapter
trained here joins the reward committee."""

from __future__ import annotations

import json
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, update

from curate.store.schema import Completion, GenerationRun, Item, ModelVersion, Pair, Record, Round, Score, ScoreRun


def tiny_recipe(tiny_models) -> tuple[str, ...]:
    return ("--set", f"model={tiny_models['causal']}", "--set", "train.max_steps=2", "--set",
            "train.max_length=128", "--set", "train.eval_examples=8")


@pytest.fixture
def trained(judged, tiny_models, cli):
    """UKP dev with round 1 judged in the app and dpo-lora-r1 trained on it (tiny model, 2 steps)."""
    code, _, err = cli("train", "dpo-lora", "--round", "1", *tiny_recipe(tiny_models), "--project", judged.root)
    assert code == 0, err
    return judged


def generated(project, run_id=None):
    query = select(Completion).where(Completion.origin == "generated")
    if run_id is not None:
        query = query.where(Completion.generation_id == run_id)
    with project.store.read() as conn:
        return conn.execute(query).all()


def test_generate_train_score_select_and_trace(trained, cli):
    root = trained.root
    code, out, err = cli("generate", "--model", "dpo-lora-r1", "--n", "3", "--max-new-tokens", "12", "--limit", "6",
                         "--batch-size", "4", "--json", "--project", root)
    assert code == 0, err
    result = json.loads(out)
    assert result["model"] == "dpo-lora-r1" and result["prompts"] == 6 and result["skipped"] == 0
    rows = generated(trained, result["run_id"])
    assert len(rows) == result["completions"] and result["completions"] + result["empty"] + result["repeated"] == 18
    assert len({r.record_id for r in rows}) == 6 and all(r.text and r.text == r.text.strip() for r in rows)
    with trained.store.read() as conn:
        prompts = dict(conn.execute(select(Record.id, Record.prompt)).all())
    assert not any(prompts[r.record_id][-40:] in r.text for r in rows)  # only the new tokens are kept
    assert {r.model for r in rows} == {"dpo-lora-r1"} and all(r.messages is None for r in rows)  # UKP is plain text
    with trained.store.read() as conn:
        run = conn.execute(select(GenerationRun).where(GenerationRun.id == result["run_id"])).one()
        version = conn.execute(select(ModelVersion).where(ModelVersion.name == "dpo-lora-r1")).one()
        ids = {r.id for r in rows}
        pairs = conn.execute(select(Pair.record_id, Pair.a_id, Pair.b_id).where(Pair.a_id.in_(ids))).all()
    assert run.model_version_id == version.id and run.status == "done" and run.params["n"] == 3
    assert run.params["temperature"] == 0.8 and run.counts["pairs"] == result["pairs"]
    per_record: dict[str, set[str]] = {}
    for r in rows:
        per_record.setdefault(r.record_id, set()).add(r.id)
    expected = {(rec, a, b) for rec, ids_ in per_record.items() for a, b in combinations(sorted(ids_), 2)}
    assert set(pairs) == expected and len(expected) == result["pairs"]  # each prompt's samples, paired

    # the same settings again: every prompt is skipped and no run is recorded
    code, out, err = cli("generate", "--model", "dpo-lora-r1", "--n", "3", "--max-new-tokens", "12", "--limit", "6",
                         "--batch-size", "4", "--json", "--project", root)
    assert code == 0, err
    again = json.loads(out)
    assert again["skipped"] == 6 and again["completions"] == 0 and again["run_id"] is None

    # the new model scores the new completions, and the next select uses those scores
    code, out, err = cli("score", "entropy", "--model", "dpo-lora-r1", "--max-length", "128", "--json",
                         "--project", root)
    assert code == 0, err
    entropy_run = json.loads(out)["run_id"]
    with trained.store.read() as conn:
        scored = set(conn.scalars(select(Score.unit_id).where(Score.run_id == entropy_run)))
        model = conn.scalar(select(ScoreRun.model).where(ScoreRun.id == entropy_run))
    assert ids <= scored and model.startswith("dpo-lora-r1@")
    code, out, err = cli("select", "--budget", "100", "--strategy", "token-entropy", "--json", "--project", root)
    assert code == 0, err
    manifest = json.loads(Path(json.loads(out)["manifest"]).read_text())
    assert manifest["models"]["scores"]["entropy"]["model"] == model  # round 2 ranked by the new model's entropy
    with trained.store.read() as conn:
        assert manifest["pool"]["pairs"] == conn.scalar(select(func.count()).select_from(Pair))
    with trained.store.read() as conn:
        round_two = conn.scalar(select(Round.id).where(Round.number == 2))
        picked = conn.scalar(select(func.count()).select_from(Item).join(Pair, Pair.id == Item.pair_id).where(
            Item.round_id == round_two, Pair.a_id.in_(ids) | Pair.b_id.in_(ids)))

    code, out, err = cli("status", "--json", "--project", root)
    assert code == 0, err
    status = json.loads(out)
    model_entry = next(m for m in status["trained_models"] if m["name"] == "dpo-lora-r1")
    assert model_entry["round"] == 1 and model_entry["adapter"] == version.path
    assert model_entry["data"]["train"]["sha256"] == version.metrics["data"]["train"]["sha256"]
    runs = {g["run"]: g for g in status["generations"]}
    assert runs[result["run_id"]]["model"] == "dpo-lora-r1" and runs[result["run_id"]]["model_round"] == 1
    assert runs[result["run_id"]]["completions"] == result["completions"]
    assert runs[result["run_id"]]["selected_in_rounds"] == ({"2": picked} if picked else {})
    code, out, err = cli("status", "--project", root)
    assert code == 0 and "adapter-dpo" in out and f"generation {result['run_id']} by" in out, err


def test_an_interrupted_generation_resumes(trained):
    from curate.train.generate import generate

    def stop_after_one_batch(items, _description, _total):
        for step, item in enumerate(items):
            if step == 1:
                raise KeyboardInterrupt
            yield item

    settings = dict(model="dpo-lora-r1", n=2, max_new_tokens=8, limit=5, batch_size=2, seed=3)
    with pytest.raises(KeyboardInterrupt):
        generate(trained, progress=stop_after_one_batch, **settings)
    first = generated(trained)
    assert len({r.record_id for r in first}) == 2  # the first batch was written
    with trained.store.read() as conn:
        assert conn.scalar(select(GenerationRun.status)) == "interrupted"
    result = generate(trained, **settings)
    assert result.skipped == 2 and result.prompts == 3
    assert len({r.record_id for r in generated(trained)}) == 5
    assert {r.id for r in first} <= {r.id for r in generated(trained)}


def test_generate_refuses_bad_settings_in_one_line(annotation, cli):
    for args, message in [(("--n", "1"), "--n must be 2 to 8"),
                          (("--temperature", "0"), "the temperature must be above 0"),
                          (("--limit", "0"), "--limit must be 1 or more"),
                          (("--top-p", "1.5"), "top_p must be above 0 and at most 1")]:
        code, _, err = cli("generate", "--model", "dpo-lora-r1", *args, "--project", annotation.root)
        assert code == 1 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("generate", "--model", "no-such-model", "--project", annotation.root)
    assert code == 1 and "model 'no-such-model' is neither a local folder" in err
    with annotation.store.read() as conn:
        assert conn.scalar(select(func.count()).select_from(GenerationRun)) == 0


def test_a_reward_lora_trained_here_joins_the_reward_committee(judged, tiny_models, cli):
    annotation, root = judged, judged.root
    code, _, err = cli("train", "reward-lora", "--round", "1", *tiny_recipe(tiny_models), "--project", root)
    assert code == 0, err
    code, _, err = cli("generate", "--model", "reward-lora-r1", "--project", root)
    assert code == 1 and "'reward-lora-r1' is a reward model (adapter-reward) and cannot write text" in err
    code, out, err = cli("score", "reward-models", "--model", "reward-lora-r1", "--model",
                         str(tiny_models["reward1"]), "--max-length", "128", "--json", "--project", root)
    assert code == 0, err
    result = json.loads(out)
    assert result["models"] == ["reward-lora-r1", str(tiny_models["reward1"])]
    with annotation.store.read() as conn:
        run = conn.execute(select(ScoreRun).where(ScoreRun.id == result["run_id"])).one()
        completions = conn.scalar(select(func.count()).select_from(Completion))
        values = conn.execute(select(Score.name, Score.value).where(Score.run_id == result["completion_run_id"])).all()
    assert [m["name"] for m in run.config["models"]] == ["reward-lora-r1", str(tiny_models["reward1"])]
    assert len(values) >= 2 * completions and np.isfinite([v for _, v in values]).all()

    # the committee scored with the head this training saved, not a fresh random one
    from safetensors.torch import load_file

    from curate.scores.lm import load_reward_model, resolve_scorer

    model, _ = load_reward_model(resolve_scorer("reward-lora-r1", cache=root / "cache", project=annotation),
                                 cache=root / "cache")
    saved = load_file(root / "models" / "reward-lora-r1" / "adapter" / "adapter_model.safetensors")
    head = next(v for k, v in saved.items() if k.endswith("score.weight"))
    assert (model.score.weight.detach() == head).all() and head.abs().sum() > 0


def test_a_conversational_pool_is_sampled_through_the_chat_template(sqlite_project, shared_data, tiny_models,
                                                                      tmp_path):
    """hh-rlhf as chat messages, one pair per prompt: any model folder generates (registered as a policy), chat
    completions are stored as messages, and the prompts held out whole in the slices are never sampled."""
    from conftest import hh_chat_file

    from curate import ingest_files, init_project
    from curate.select.rounds import select_round
    from curate.store.schema import Slice
    from curate.train.generate import generate

    data = hh_chat_file(shared_data, tmp_path, 40)
    twin = init_project(tmp_path / "twin")
    for project in (sqlite_project, twin):
        ingest_files(project, [data])
        select_round(project, budget=5, strategy="random")
    with sqlite_project.store.read() as conn:
        sliced = set(conn.scalars(select(Pair.record_id).join(Slice, Slice.pair_id == Pair.id)))
    assert 0 < len(sliced) < 40

    result = generate(sqlite_project, model=str(tiny_models["causal"]), n=2, max_new_tokens=6, seed=1)
    assert result.held_out == len(sliced) and result.prompts == 40 - len(sliced)
    assert result.model.startswith(f"{tiny_models['causal']}@")
    rows = generated(sqlite_project, result.run_id)
    assert rows and not {r.record_id for r in rows} & sliced
    assert all(r.messages == [{"role": "assistant", "content": r.text}] for r in rows)
    with sqlite_project.store.read() as conn:
        assert conn.scalar(select(ModelVersion.kind).where(ModelVersion.name == result.model)) == "policy"
    again = generate(twin, model=str(tiny_models["causal"]), n=2, max_new_tokens=6, seed=1)
    assert sorted(r.id for r in generated(twin, again.run_id)) == sorted(r.id for r in rows)  # same settings, same
    twin.close()

    from curate.models import resolve_model
    from curate.rendering import Content
    from curate.train.sampling import encode_prompt, load_prompting, load_sampler

    tiny = resolve_model(str(tiny_models["causal"]))
    prompting, sampler = load_prompting(tiny, cache=tmp_path), load_sampler(tiny, cache=tmp_path)
    question = [{"role": "user", "content": "Is the sky blue?"}]
    ids, cut = encode_prompt(prompting, Content("", question), limit=1024)
    shown = prompting.tokenizer.decode(ids)
    assert not cut and "Is the sky blue?" in shown and shown.rstrip().endswith("<|im_start|>assistant")
    assert sampler.tokenizer.convert_tokens_to_ids("<|im_end|>") in sampler.ends  # a turn's end stops a sample
    assert prompting.context == sampler.model.config.max_position_embeddings  # read without loading the weights
    prompting.rendering.chat = False
    ids, cut = encode_prompt(prompting, Content("Is the sky blue?"), limit=3)
    assert cut and len(ids) == 3  # a long prompt keeps its end


def test_the_vllm_backend_samples_each_prompt_under_its_own_seed(sqlite_project, shared_data, tiny_models, tmp_path,
                                                                  monkeypatch, cli, request):
    """``--backend vllm`` through the vLLM offline API (a transformers stand-in here, tests/vllm_standin: vLLM needs
    a CUDA GPU): an adapter is merged into its base once for vLLM to load, prompts reach it as the same token ids
    the transformers backend samples, every prompt under its own seed (so a prompt's samples do not depend on
    which prompts share a call), and the run records its backend, which is part of "the same settings"."""
    from conftest import hh_chat_file

    from curate import ingest_files, init_project
    from curate.train.generate import generate

    adapter = str(tiny_models["dpo_lora"])
    data = hh_chat_file(shared_data, tmp_path, 24)
    twin = init_project(tmp_path / "twin")
    for project in (sqlite_project, twin):
        ingest_files(project, [data])
    code, _, err = cli("generate", "--model", adapter, "--backend", "vllm", "--project", sqlite_project.root)
    assert code == 1 and "the vllm backend needs vLLM, which is not installed here" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    with sqlite_project.store.read() as conn:
        assert conn.scalar(select(func.count()).select_from(GenerationRun)) == 0

    monkeypatch.syspath_prepend(str(Path(__file__).parent / "vllm_standin"))
    request.addfinalizer(lambda: sys.modules.pop("vllm", None))  # vLLM is not installed for the tests after this
    from vllm import LLM

    settings = dict(model=adapter, n=2, max_new_tokens=6, seed=4)
    result = generate(sqlite_project, backend="vllm", **settings)
    assert result.prompts == 24 and result.completions > 24
    merged = sqlite_project.root / "cache" / "merged"
    (folder,) = merged.iterdir()
    assert LLM.loaded[-1] == str(folder) and (folder / "model.safetensors").is_file()
    assert not (folder / "adapter_config.json").exists()  # a whole model: the adapter folded into its base
    with sqlite_project.store.read() as conn:
        params = conn.scalar(select(GenerationRun.params).where(GenerationRun.id == result.run_id))
    assert params["backend"] == "vllm" and "batch_size" not in params  # it does not change a vLLM sample
    requests = LLM.requests[-24:]
    assert len({params.seed for _, params in requests}) == 24 and {p.n for _, p in requests} == {2}

    # the same prompts as the transformers backend encodes them
    from curate.models import resolve_model
    from curate.rendering import Content
    from curate.train.sampling import encode_prompt, load_prompting

    prompting = load_prompting(resolve_model(adapter), cache=tmp_path)
    with sqlite_project.store.read() as conn:
        prompts = conn.execute(select(Record.prompt, Record.messages)).all()
    expected = sorted(encode_prompt(prompting, Content(p, m), limit=1024)[0] for p, m in prompts)
    assert sorted(ids for ids, _ in requests) == expected

    # a third of the prompts in the twin: each of them is given the same samples as in the full run
    some = generate(twin, backend="vllm", limit=8, **settings)
    assert some.prompts == 8 and len(LLM.loaded) == 2
    full = {(r.record_id, r.text) for r in generated(sqlite_project)}
    part = {(r.record_id, r.text) for r in generated(twin)}
    assert part and part <= full

    # the backend is part of the settings: vLLM's samples are not the transformers backend's
    assert generate(sqlite_project, backend="vllm", **settings).skipped == 24
    other = generate(sqlite_project, backend="transformers", **settings)
    assert other.skipped == 0 and other.prompts == 24
    with sqlite_project.store.write() as conn:  # a run recorded before the backend was a setting
        old = conn.scalar(select(GenerationRun.params).where(GenerationRun.id == other.run_id))
        conn.execute(update(GenerationRun).where(GenerationRun.id == other.run_id).values(
            params={k: v for k, v in old.items() if k != "backend"}))
    assert generate(sqlite_project, backend="transformers", **settings).skipped == 24  # was a transformers run
    from curate.compute import Compute
    from curate.errors import CurateError
    from curate.train.sampling import choose_backend

    assert choose_backend("vllm", Compute("cuda:0")) == choose_backend("vllm", Compute("cuda")) == "vllm"
    with pytest.raises(CurateError, match="set CUDA_VISIBLE_DEVICES=N and use --device cuda"):
        choose_backend("vllm", Compute("cuda:1"))  # vLLM would take GPU 0: refused
    auto = generate(twin, backend="auto", **settings)  # on the CPU, auto samples with transformers
    with twin.store.read() as conn:
        assert conn.scalar(select(GenerationRun.params).where(GenerationRun.id == auto.run_id))["backend"] == \
            "transformers"
    twin.close()
