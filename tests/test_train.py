"""``curate train`` on UKP dev's round 1: a tiny random Llama for the mechanics (adapter, registry, test-slice
figure, dry run, warm start, resume after a crash, one-line errors), and every recipe for a few steps on the
real SmolLM2-135M."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from sqlalchemy import select

from curate.store.schema import AuditEntry, ModelVersion, Round


def versions(project):
    with project.store.read() as conn:
        return {v.name: v for v in conn.execute(select(ModelVersion).where(ModelVersion.kind.like("adapter-%")))}


def test_dpo_on_round_one_registers_an_evaluated_adapter(judged, tiny_models, cli):
    annotation = judged  # UKP dev, round 1 judged in the app
    root, tiny = annotation.root, str(tiny_models["causal"])
    tiny_args = ("--set", f"model={tiny}", "--set", "train.max_steps=2", "--set", "train.max_length=128",
                 "--set", "train.eval_examples=16")
    code, out, err = cli("train", "dpo-lora", "--round", "1", *tiny_args, "--dry-run", "--json", "--project", root)
    assert code == 0, err
    planned = json.loads(out)
    from curate.export import build_examples

    train_rows = [e for e in build_examples(annotation, fmt="dpo", round_number=1).rows if e.split == "train"]
    assert {e.lineage["source"] for e in train_rows} == {"app"}  # the round's own judgments, all of them
    assert planned["name"] == "dpo-lora-r1" and planned["data"]["train"]["rows"] == len(train_rows) > 300
    assert not (root / "models" / "dpo-lora-r1").exists() and not versions(annotation)  # a dry run writes nothing

    code, out, err = cli("train", "dpo-lora", "--round", "1", *tiny_args, "--json", "--project", root)
    assert code == 0, err
    trained = json.loads(out)
    folder = root / "models" / "dpo-lora-r1"
    data = folder / "data" / "dpo.jsonl"
    assert trained["data"]["train"] == {**planned["data"]["train"], "path": str(data)}  # the plan's data, hashed
    assert hashlib.sha256(data.read_bytes()).hexdigest() == trained["data"]["train"]["sha256"]
    first = json.loads(data.read_text().splitlines()[0])  # the model has a chat template: trained through it
    assert first["prompt"][0]["role"] == "user" and first["chosen"][0]["role"] == "assistant"
    assert (folder / "data" / "dpo.test.jsonl").is_file() and "train" not in json.dumps(trained["data"]["test"]["path"])
    weights = folder / "adapter" / "adapter_model.safetensors"
    assert weights.is_file() and not [p for p in (folder / "adapter").iterdir() if p.suffix in (".bin", ".pt", ".pth")]
    assert trained["steps"] == 2 and 0 <= trained["test"]["preference_accuracy"] <= 1
    assert trained["steps_per_second"] == pytest.approx(2 / trained["train_seconds"])
    assert trained["test"]["examples"] == 16  # the first 16 test-slice pairs (eval_examples)
    version = versions(annotation)["dpo-lora-r1"]
    with annotation.store.read() as conn:
        round_one = conn.scalar(select(Round.id).where(Round.number == 1))
        audited = conn.scalar(select(AuditEntry.details).where(AuditEntry.action == "train"))
    assert version.kind == "adapter-dpo" and version.round_id == round_one and version.base == tiny
    assert version.fingerprint == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert version.metrics["data"]["train"]["sha256"] == trained["data"]["train"]["sha256"]
    assert version.metrics["recipe"]["train"]["beta"] == 0.1 and audited["fingerprint"] == version.fingerprint

    # a warm start continues from that adapter, and records it as the parent
    code, out, err = cli("train", "dpo-lora", "--round", "1", *tiny_args, "--warm-start", "--json", "--project", root)
    assert code == 0, err
    again = json.loads(out)
    assert again["name"] == "dpo-lora-r1-2" and again["parent"] == "dpo-lora-r1"
    assert versions(annotation)["dpo-lora-r1-2"].base == "dpo-lora-r1"


def test_a_reward_model_counts_the_pairs_too_long_to_train_on(judged, tiny_models, cli):
    """TRL's reward trainer leaves out pairs longer than train.max_length (DPO cuts them instead): the version
    counts them, and the summary the CLI prints says how many and what to raise."""
    from curate.train.training import version_summary

    code, out, err = cli("train", "reward-lora", "--round", "1", "--set", f"model={tiny_models['causal']}", "--set",
                         "train.max_steps=1", "--set", "train.max_length=192", "--set", "train.eval_examples=0",
                         "--json", "--project", judged.root)
    assert code == 0, err
    version = json.loads(out)
    rows, dropped = version["data"]["train"]["rows"], version["longer_than_max_length"]
    assert 0 < dropped < rows and version["examples"] == rows - dropped
    assert (f"{dropped} of {rows} training examples were longer than train.max_length = 192 tokens and left out"
            in version_summary(version))


def test_resume_continues_a_crashed_run_from_its_checkpoint(judged, tiny_models):
    from curate.train.training import plan_training, run_training

    annotation = judged
    overrides = [f"model={tiny_models['causal']}", "train.max_steps=4", "train.save_steps=2",
                 "train.max_length=128", "train.eval_examples=8"]

    def crash_at_step_three(items, _description, _total):
        for step, item in enumerate(items):
            if step == 3:
                raise RuntimeError("the machine went down")
            yield item

    plan = plan_training(annotation, "sft-lora", round_number=1, overrides=overrides)
    with pytest.raises(RuntimeError, match="went down"):
        run_training(annotation, plan, progress=crash_at_step_three)
    assert [p.name for p in (plan.output / "checkpoints").glob("checkpoint-*")] == ["checkpoint-2"]
    assert not versions(annotation)
    resumed = plan_training(annotation, "sft-lora", round_number=1, overrides=overrides, resume=True)
    assert resumed.name == plan.name == "sft-lora-r1" and resumed.data == plan.data  # the run's own data
    version = run_training(annotation, resumed, resume=True)
    assert version["steps"] == 4 and version["test"]["loss"] > 0 and "preference_accuracy" not in version["test"]
    assert version["steps_per_second"] == pytest.approx(2 / version["train_seconds"])  # the 2 steps it trained
    assert set(versions(annotation)) == {"sft-lora-r1"}


def test_bad_training_requests_get_one_line(sqlite_project, tmp_path, tiny_models, cli, shared_data):
    import gzip

    root = sqlite_project.root
    tiny = f"model={tiny_models['causal']}"
    code, _, err = cli("train", "dpo-lora", "--set", "model=/no/such/model", "--project", root)
    assert code != 0 and "/no/such/model" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = cli("train", "dpo-lora", "--set", tiny, "--set", "train.lerning_rate=1", "--project", root)
    assert code != 0 and "unknown key 'lerning_rate'" in err and "did you mean 'learning_rate'" in err
    code, _, err = cli("train", "dpo-lora", "--set", tiny, "--project", root)
    assert code != 0 and "no dpo examples to train on in the project: nothing is labelled yet" in err, err
    code, _, err = cli("train", "kto-lora", "--set", tiny, "--resume", "--project", root)
    assert code != 0 and "--resume: no interrupted kto-lora-all run" in err
    with gzip.open(shared_data / "hh-rlhf-harmless-test-dev.jsonl.gz", "rt", encoding="utf-8") as fh:
        row = json.loads(fh.readline())
    bad = tmp_path / "sft.jsonl"
    bad.write_text(json.dumps({"prompt": "hi", "completion": "hello"}) + "\n" + json.dumps(row) + "\n")
    code, _, err = cli("train", "sft-lora", "--set", tiny, "--data", bad, "--project", root)
    assert code != 0 and f"{bad}:2: a sft example needs completion, prompt" in err
    assert not list((root / "models").iterdir())  # nothing half-written


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["sft-lora", "dpo-lora", "reward-lora", "kto-lora"])
def test_every_recipe_trains_the_real_small_model(recipe, judged_base, model_cache, tmp_path):
    """A few steps of each packaged recipe on SmolLM2-135M-Instruct (the dequantised packaged model)."""
    import math

    from curate import open_project
    from curate.export import build_examples, render
    from curate.models import DEFAULT_POLICY, resolve_model
    from curate.train.training import plan_training, run_training

    kind = recipe.removesuffix("-lora")
    with open_project(judged_base) as project:
        rows = render(project, build_examples(project, fmt=kind, round_number=1).rows, kind)["train"]
    rows = sorted(rows, key=lambda r: len(json.dumps(r)))  # the shortest, so that none is cut at max_length
    picked = [r for r in rows if r["label"]][:4] + [r for r in rows if not r["label"]][:4] if kind == "kto" \
        else rows[:8]
    data = tmp_path / f"{kind}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in picked), encoding="utf-8")
    model = resolve_model(DEFAULT_POLICY, cache=model_cache).path
    root = tmp_path / "proj"
    import shutil

    shutil.copytree(judged_base, root)
    with open_project(root) as project:
        plan = plan_training(project, recipe, data=data, overrides=[
            f"model={model}", "train.max_steps=2", "train.max_length=256", "train.per_device_train_batch_size=2"])
        version = run_training(project, plan)
    assert version["steps"] == 2 and math.isfinite(version["train_loss"]) and version["test"] is None
    assert (root / "models" / plan.name / "adapter" / "adapter_model.safetensors").is_file()


def test_two_cpu_processes_train_one_adapter_under_accelerate(judged, tiny_models, cli):
    """``--num-processes 2`` on the CPU: two gloo processes under accelerate launch train the recipe (each
    step one batch per process), save one adapter of the single-process shape, and register it once."""
    from safetensors.numpy import load_file

    root, tiny = judged.root, str(tiny_models["causal"])
    tiny_args = ("--set", f"model={tiny}", "--set", "train.max_steps=2", "--set", "train.max_length=128",
                 "--set", "train.eval_examples=8", "--device", "cpu")
    code, out, err = cli("train", "dpo-lora", "--round", "1", *tiny_args, "--num-processes", "2", "--json",
                         "--project", root)
    assert code == 0, err
    both = json.loads(out)
    assert both["processes"] == 2 and both["steps"] == 2 and 0 <= both["test"]["preference_accuracy"] <= 1
    log = (root / "models" / "dpo-lora-r1" / "launch" / "log.txt").read_text()
    assert json.loads((root / "models" / "dpo-lora-r1" / "launch" / "progress.json").read_text())["done"] == 2
    code, out, err = cli("train", "dpo-lora", "--round", "1", *tiny_args, "--json", "--project", root)
    assert code == 0, err
    one = json.loads(out)
    assert one["processes"] == 1 and set(versions(judged)) == {"dpo-lora-r1", "dpo-lora-r1-2"}, log
    shapes = [{k: v.shape for k, v in load_file(f"{p}/adapter_model.safetensors").items()}
              for p in (both["path"], one["path"])]
    assert shapes[0] == shapes[1] and shapes[0]
    weights = [load_file(f"{p}/adapter_model.safetensors") for p in (both["path"], one["path"])]
    # each step saw a batch per process
    assert any(not np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])
    with judged.store.read() as conn:
        audited = conn.scalars(select(AuditEntry.entity_id).where(AuditEntry.action == "train")).all()
    assert sorted(audited) == ["dpo-lora-r1", "dpo-lora-r1-2"]  # each run registered once
