"""DPO-LoRA training speed: ``curate train dpo-lora`` against a plain TRL ``DPOTrainer`` script with the same
model (the packaged SmolLM2-135M-Instruct), data, LoRA and trainer settings, in the same run; steps/s for both
and the ratio (goal >= 0.95: curate's export, registry and progress cost nothing per step).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/train_dpo_steps.py [STEPS=20] [REPEATS=2]

The data is UKP dev's round 1 (500 random pairs, slices reserved) exported by curate; the plain script reads
the same file. Both sides run REPEATS times, alternating, and the best run of each counts (the machine is
shared). Steps/s is the steps over TRL's ``train_runtime`` (model loading and evaluation excluded on both sides);
curate's whole command time, with the export and the test-slice evaluation, is printed too.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETTINGS = ["train.per_device_train_batch_size=4", "train.max_length=256", "train.save_steps=1000",
            "train.eval_examples=16", "train.logging_steps=1000"]


def curate_run(root: Path, steps: int) -> tuple[float, float]:
    from curate import open_project
    from curate.train.training import plan_training, run_training

    started = time.perf_counter()
    with open_project(root) as project:
        plan = plan_training(project, "dpo-lora", round_number=1, overrides=[*SETTINGS, f"train.max_steps={steps}"])
        version = run_training(project, plan)
    return version["steps_per_second"], time.perf_counter() - started


def plain_run(root: Path, data: Path, steps: int) -> float:
    """What a user would write with TRL and PEFT alone, the recipe's settings spelled out."""
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from curate.models import DEFAULT_POLICY, resolve_model
    from curate.train.recipe import load_recipe

    recipe, _ = load_recipe("dpo-lora", overrides=[*SETTINGS, f"train.max_steps={steps}"])
    base = resolve_model(DEFAULT_POLICY, cache=root / "cache").path
    gpu = torch.cuda.is_available()
    bf16 = gpu and torch.cuda.is_bf16_supported()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16 if bf16 else torch.float32)
    t = recipe.train
    args = DPOConfig(output_dir=str(root / "plain"), learning_rate=t.learning_rate, num_train_epochs=t.num_train_epochs,
                     max_steps=t.max_steps, per_device_train_batch_size=t.per_device_train_batch_size,
                     gradient_accumulation_steps=t.gradient_accumulation_steps, max_length=t.max_length,
                     warmup_steps=t.warmup_steps, logging_steps=t.logging_steps, save_steps=t.save_steps, seed=t.seed,
                     beta=t.beta, loss_type=[t.loss_type], gradient_checkpointing=t.gradient_checkpointing,
                     weight_decay=t.weight_decay, lr_scheduler_type=t.lr_scheduler_type, bf16=bf16, report_to=[],
                     dataloader_pin_memory=False, use_cpu=not gpu, disable_tqdm=True, save_total_limit=2)
    lora = LoraConfig(r=recipe.lora.r, lora_alpha=recipe.lora.alpha, lora_dropout=recipe.lora.dropout,
                      target_modules=list(recipe.lora.target_modules), task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=model, args=args, train_dataset=load_dataset("json", data_files=str(data),
                                                                            split="train"),
                         processing_class=tokenizer, peft_config=lora)
    return steps / trainer.train().metrics["train_runtime"]  # TRL's own steps/s is rounded to 3 decimals


def main(steps: int = 20, repeats: int = 2) -> None:
    import shutil

    from curate import init_project
    from curate.ingest import ingest_files
    from curate.select.rounds import select_round

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "proj"
        with init_project(root) as project:
            ingest_files(project, [DATA / "ukp-convarg1-dev.jsonl.gz"])
            select_round(project, budget=500, strategy="random", route="rank")
        ours, plain, wall = [], [], []
        for _ in range(repeats):
            rate, seconds = curate_run(root, steps)
            ours.append(rate)
            wall.append(seconds)
            data = sorted((root / "models").glob("dpo-lora-r1*/data/dpo.jsonl"))[0]
            plain.append(plain_run(root, data, steps))
            shutil.rmtree(root / "plain", ignore_errors=True)
    print(f"DPO-LoRA, SmolLM2-135M, {steps} steps of 4 pairs, max_length 256, "
          f"{__import__('torch').get_num_threads()} threads")
    print(f"  plain TRL DPOTrainer: {max(plain):.3f} steps/s (runs: {', '.join(f'{r:.3f}' for r in plain)})")
    print(f"  curate train:         {max(ours):.3f} steps/s (runs: {', '.join(f'{r:.3f}' for r in ours)}); "
          f"whole command {min(wall):.1f} s with export and test-slice evaluation")
    print(f"  ratio curate / plain: {max(ours) / max(plain):.3f} (goal >= 0.95)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
