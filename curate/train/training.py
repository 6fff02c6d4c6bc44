"""``curate train``: run a recipe (TRL + PEFT LoRA) on a curated round, save the adapter as safetensors under
``models/``, evaluate it on the frozen test slice and register the model version with its lineage.

The dataset is the round's export (``curate.export``) in the recipe's format, written next to the adapter and
hashed, or a file you give. Models load from safetensors only, never with remote code. It trains where
[compute] device (or ``device``) says: on a GPU in bf16 where the GPU supports it, on a CPU in float32.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from curate.errors import CurateError
from curate.files import publish_text, staged_folder
from curate.progress import Progress, no_progress
from curate.project import Project
from curate.train.recipe import Recipe, load_recipe

TASKS = {"sft": "CAUSAL_LM", "dpo": "CAUSAL_LM", "kto": "CAUSAL_LM", "reward": "SEQ_CLS"}


@dataclass(frozen=True)
class TrainPlan:
    """What ``curate train`` will do (all of it is shown by ``--dry-run``)."""

    name: str  # the model version to register
    recipe: Recipe
    source: str  # where the recipe came from
    base: str  # the model the adapter is trained on (a folder)
    parent: str | None  # the adapter it warm-starts from (a model version), if any
    data: dict[str, Any]  # split -> {"path", "rows", "sha256"}
    output: Path
    round: int | None
    device: str = "cpu"  # where it trains: the CPU, the visible CUDA GPUs (cuda:0 first) or mps
    dtype: str = "auto"  # [compute] dtype: auto or bfloat16 trains in bf16 on a GPU that has it


def plan_training(project: Project, recipe_name: str, *, round_number: int | None = None, data: Path | None = None,
                  overrides: list[str] | None = None, warm_start: bool = False, resume: bool = False,
                  dry_run: bool = False, with_imported: bool = False, device: str | None = None) -> TrainPlan:
    """Resolve the recipe, the model and the dataset (exported from the store unless ``data`` is given, with
    imported labels only ``with_imported``, as ``curate export`` does; written
    under the adapter's folder, or only hashed for a dry run). ``resume`` picks up the latest interrupted run
    of the same recipe and round (one with checkpoints and no registered model version)."""
    import tempfile

    from curate.export import build_examples, render, write_export
    from curate.models import has_chat_template, resolve_model

    compute = project.config.compute.resolve(device)
    if compute.device.startswith("cuda:") and compute.device != "cuda:0":
        raise CurateError(f"curate train trains on the visible GPUs and cannot pick {compute.device}: choose it with "
                          f"CUDA_VISIBLE_DEVICES={compute.device.partition(':')[2]} and --device cuda")
    recipe, source = load_recipe(recipe_name, overrides=overrides)
    base = resolve_model(recipe.model, cache=project.root / "cache")
    parent = _previous_adapter(project, recipe.kind, round_number) if warm_start else None
    if warm_start and parent is None:
        raise CurateError(f"--warm-start: no earlier {recipe.kind} adapter in this project to continue from")
    stem = f"{Path(recipe_name).stem}-{'r' + str(round_number) if round_number is not None else 'all'}"
    name = _interrupted(project, stem) if resume else _free_name(project, stem)
    if name is None:
        raise CurateError(f"--resume: no interrupted {stem} run under {project.root / 'models'} (start without "
                          "--resume)")
    output = project.root / "models" / name
    fmt = recipe.kind
    if data is not None:
        files = {"train": _describe_file(Path(data), fmt)}
    elif resume:  # the interrupted run's own data, not a fresh export of labels that may have changed since
        files = {s: _describe_file(p, fmt) for s, p in _split_files(output / "data" / f"{fmt}.jsonl").items()}
    else:
        examples = build_examples(project, fmt=fmt, round_number=round_number, with_imported=with_imported,
                                  required=True)
        rows = render(project, examples.rows, fmt, chat=has_chat_template(base.path))  # as curate.rendering renders
        with tempfile.TemporaryDirectory() as scratch:
            files = write_export(rows, Path(scratch) / f"{fmt}.jsonl")  # checked and hashed before any folder
        if dry_run:
            files = {s: {**info, "path": "(not written: dry run)"} for s, info in files.items()}
        else:
            (output / "data").mkdir(parents=True, exist_ok=True)
            files = write_export(rows, output / "data" / f"{fmt}.jsonl")
    return TrainPlan(name, recipe, source, str(base.path), parent, files, output, round_number, compute.device,
                     compute.dtype)


def run_training(project: Project, plan: TrainPlan, *, resume: bool = False,
                 progress: Progress = no_progress) -> dict[str, Any]:
    """Train ``plan`` in this process, save the adapter, evaluate it on the test slice and register it; its model
    version (``curate.train.launch`` trains with several processes)."""
    parent = adapter_path(project, plan.parent) if plan.parent else None
    with quiet():
        adapter, metrics = fit(plan, parent=parent, resume=resume, progress=progress)
    return register(project, plan, adapter, metrics)


@contextmanager
def quiet() -> Iterator[None]:
    """No ``datasets`` progress bars and no deprecation notices of transformers' own internals while training
    (the library never prints; the caller's progress shows the steps), restored afterwards."""
    import warnings

    import datasets

    shown = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")
            yield
    finally:
        if shown:
            datasets.enable_progress_bars()


def fit(plan: TrainPlan, *, parent: str | None, resume: bool, progress: Progress) -> tuple[Path, dict[str, Any]]:
    """Train ``plan`` (on the ``parent`` adapter's folder, for a warm start) and save its adapter; the adapter's
    folder and the run's figures. Under a distributed launch (``curate.train.launch``) every process runs this:
    they train together, the first one saves."""
    import torch
    from datasets import load_dataset

    kind = plan.recipe.kind
    splits = {s: load_dataset("json", data_files=info["path"], split="train") for s, info in plan.data.items()
              if s in ("train", "test")}
    if "test" in splits:
        wanted = min(plan.recipe.train.eval_examples, len(splits["test"]))
        splits["test"] = splits["test"].select(range(wanted)) if wanted else None
    checkpoints = plan.output / "checkpoints"
    from curate.compute import model_dtype

    bf16 = plan.device.startswith("cuda") and model_dtype(plan.device, plan.dtype) == torch.bfloat16
    tokenizer, model = _load(plan, parent, torch.bfloat16 if bf16 else torch.float32)
    args = _config_class(kind)(
        output_dir=str(checkpoints), **_trainer_args(plan.recipe), bf16=bf16, report_to=[],
        dataloader_pin_memory=False, save_strategy="steps", save_total_limit=2, use_cpu=plan.device == "cpu",
        disable_tqdm=True, eval_strategy="no", ddp_find_unused_parameters=False)
    callback = _ProgressCallback(progress, len(splits.get("test") or []))
    trainer = _trainer_class(kind)(model=model, args=args, train_dataset=splits["train"],
                                   eval_dataset=splits.get("test"), processing_class=tokenizer,
                                   peft_config=None if plan.parent else _lora(plan.recipe),
                                   callbacks=[callback])
    if len(trainer.train_dataset) == 0:  # the trainer drops examples longer than max_length
        raise CurateError(f"every training example is longer than train.max_length = {plan.recipe.train.max_length}"
                          " tokens: raise it (--set train.max_length=...)")
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the library never prints; the CLI shows a progress bar
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    adapter = plan.output / "adapter"
    if trainer.is_world_process_zero():
        with staged_folder(adapter) as stage:  # a kill leaves the previous adapter or this one, whole
            trainer.save_model(str(stage))
            (stage / "training_args.bin").unlink(missing_ok=True)  # a pickle; the registry keeps arguments as JSON
            tokenizer.save_pretrained(str(stage))
    seconds = result.metrics.get("train_runtime")  # of this run (a resumed one: since its checkpoint)
    trained = len(trainer.train_dataset)
    metrics = {"train_loss": result.training_loss, "steps": trainer.state.global_step, "train_seconds": seconds,
               "examples": trained, "longer_than_max_length": plan.data["train"]["rows"] - trained,
               "steps_per_second": callback.done / seconds if seconds else None, "test": _evaluate(trainer, plan),
               "processes": trainer.args.world_size}
    return adapter, metrics


def _config_class(kind: str) -> Any:
    import trl

    return {"sft": trl.SFTConfig, "dpo": trl.DPOConfig, "reward": trl.RewardConfig, "kto": trl.KTOConfig}[kind]


def _trainer_class(kind: str) -> Any:
    import trl

    return {"sft": trl.SFTTrainer, "dpo": trl.DPOTrainer, "reward": trl.RewardTrainer, "kto": trl.KTOTrainer}[kind]


def _trainer_args(recipe: Recipe) -> dict[str, Any]:
    """The recipe's [train] section as TRL config arguments."""
    args = asdict(recipe.train)
    del args["eval_examples"]  # curate's, not TRL's
    if "loss_type" in args:
        args["loss_type"] = [args["loss_type"]]  # TRL 1.x takes a list of losses to combine
    return args


def _lora(recipe: Recipe) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=recipe.lora.r, lora_alpha=recipe.lora.alpha, lora_dropout=recipe.lora.dropout,
                      target_modules=list(recipe.lora.target_modules), task_type=TASKS[recipe.kind])


def _load(plan: TrainPlan, parent: str | None, dtype: Any) -> tuple[Any, Any]:
    """The tokenizer and the model to train (with the parent adapter, trainable, on a warm start)."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging

    from curate.models import NO_HUB_KERNELS

    logging.disable_progress_bar()  # the library never prints: no "Loading weights" bar
    tokenizer = AutoTokenizer.from_pretrained(plan.base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if plan.recipe.kind == "reward":
        model = AutoModelForSequenceClassification.from_pretrained(plan.base, num_labels=1, dtype=dtype,
                                                                   use_safetensors=True, **NO_HUB_KERNELS)
        model.config.pad_token_id = tokenizer.pad_token_id
    else:
        model = AutoModelForCausalLM.from_pretrained(plan.base, dtype=dtype, use_safetensors=True, **NO_HUB_KERNELS)
    if plan.parent:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, parent, is_trainable=True)
    return tokenizer, model


def _evaluate(trainer: Any, plan: TrainPlan) -> dict[str, Any] | None:
    """The adapter's figures on the frozen test slice: preference accuracy of the implicit reward (DPO),
    accuracy (reward model), loss (all)."""
    if trainer.eval_dataset is None:  # no test slice, or eval_examples = 0
        return None
    metrics = trainer.evaluate()
    figure = {"dpo": "eval_rewards/accuracies", "reward": "eval_accuracy"}.get(plan.recipe.kind)
    out = {"examples": len(trainer.eval_dataset), "loss": metrics.get("eval_loss")}
    if figure and figure in metrics:
        out["preference_accuracy"] = metrics[figure]
    return out


class _ProgressCallback:
    """Feeds the trainer's steps, then the test-slice evaluation's batches, to a ``Progress`` (the CLI's bar);
    ``done`` counts the steps this run trained."""

    def __new__(cls, progress: Progress, eval_examples: int) -> Any:
        from transformers import TrainerCallback

        def finish(steps: Any) -> None:
            for _ in steps:
                pass

        class Callback(TrainerCallback):
            evaluating: Any = None
            done = 0

            def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                self.steps = iter(progress(range(state.max_steps), "training", state.max_steps))

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                self.done += 1
                next(self.steps, None)

            def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                finish(self.steps)

            def on_prediction_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                if self.evaluating is None:
                    batches = -(-eval_examples // args.per_device_eval_batch_size)
                    self.evaluating = iter(progress(range(batches), "evaluating on the test slice", batches))
                next(self.evaluating, None)

            def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                if self.evaluating is not None:
                    finish(self.evaluating)

        return Callback()


def register(project: Project, plan: TrainPlan, adapter: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """Register the adapter ``fit`` saved as a model version, with its lineage and figures; the version."""
    from curate.store import audit, model_versions

    weights = adapter / "adapter_model.safetensors"
    if not weights.is_file():
        raise CurateError(f"training wrote no {weights.name} under {adapter}")
    fingerprint = hashlib.sha256(weights.read_bytes()).hexdigest()
    record = {"recipe": plan.recipe.as_dict(), "recipe_source": plan.source, "base": plan.recipe.model,
              "base_path": plan.base, "parent": plan.parent, "data": plan.data, **metrics}
    with project.store.write() as conn:
        model_versions.add_version(conn, name=plan.name, kind=f"adapter-{plan.recipe.kind}",
                                   base=plan.parent or plan.recipe.model, path=str(adapter), fingerprint=fingerprint,
                                   round_number=plan.round, metrics=record)
        audit(conn, "train", entity="model_version", entity_id=plan.name,
              details={"recipe": plan.source, "data": plan.data, "fingerprint": fingerprint})
    publish_text(plan.output / "model-version.json", json.dumps({"name": plan.name, **record}, indent=2, default=str))
    return {"name": plan.name, "path": str(adapter), "fingerprint": fingerprint, **record}


def _previous_adapter(project: Project, kind: str, round_number: int | None) -> str | None:
    """The latest adapter of ``kind`` trained before (on this round or an earlier one, when ``round_number`` is
    given)."""
    from curate.store import model_versions

    with project.store.read() as conn:
        versions = model_versions.versions_of_kind(conn, kind=f"adapter-{kind}")
    for name, number in versions:
        if round_number is None or number is None or number <= round_number:
            return name
    return None


def adapter_path(project: Project, name: str) -> str:
    from curate.store.model_versions import version_path

    with project.store.read() as conn:
        path = version_path(conn, name)
    if path is None or not Path(path).is_dir():
        raise CurateError(f"the adapter of model version {name!r} is missing (looked in {path})")
    return path


def _interrupted(project: Project, stem: str) -> str | None:
    """The latest run of ``stem`` that left checkpoints and registered no model version."""
    from curate.store import model_versions

    with project.store.read() as conn:
        done = model_versions.names_starting(conn, stem=stem)
    runs = [p for p in (project.root / "models").glob(f"{stem}*") if p.name not in done
            and list((p / "checkpoints").glob("checkpoint-*"))]
    return max(runs, key=lambda p: p.stat().st_mtime).name if runs else None


def _free_name(project: Project, stem: str) -> str:
    """``stem``, or ``stem-2``, ``stem-3``... : a model version name not used yet."""
    from curate.store import model_versions

    with project.store.read() as conn:
        taken = model_versions.names_starting(conn, stem=stem)
    name, n = stem, 1
    while name in taken or (project.root / "models" / name).exists():
        n += 1
        name = f"{stem}-{n}"
    return name


def _split_files(train: Path) -> dict[str, Path]:
    """The split files an export wrote beside ``train`` (``x.jsonl``, ``x.test.jsonl``, ...)."""
    found = {"train": train, **{s: train.with_name(f"{train.stem}.{s}.jsonl") for s in ("test", "calibration")}}
    return {s: p for s, p in found.items() if p.is_file()}


REQUIRED = {"sft": {"prompt", "completion"}, "dpo": {"prompt", "chosen", "rejected"},
            "reward": {"chosen", "rejected"}, "kto": {"prompt", "completion", "label"}}


def _describe_file(path: Path, kind: str) -> dict[str, Any]:
    """A dataset file given with --data: checked for the columns the recipe's trainer needs."""
    if not path.is_file() or path.suffix != ".jsonl":
        raise CurateError(f"--data {path}: give a .jsonl file (curate export --format {kind} --out FILE.jsonl)")
    rows = 0
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise CurateError(f"{path}:{number}: not JSON ({err.msg})") from None
            missing = REQUIRED[kind] - set(row) if isinstance(row, dict) else REQUIRED[kind]
            if missing:
                raise CurateError(f"{path}:{number}: a {kind} example needs {', '.join(sorted(missing))}")
            rows += 1
    if not rows:
        raise CurateError(f"--data {path}: the file has no examples")
    return {"path": str(path), "rows": rows, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def version_summary(version: dict[str, Any]) -> str:
    """One line on a version ``run_training`` registered: steps, losses, its test figures and its adapter."""
    test = version["test"] or {}
    figures = [f"{name} {test[key]:.{digits}f}" for key, name, digits in (
        ("loss", "loss", 4), ("preference_accuracy", "preference accuracy", 3)) if test.get(key) is not None]
    figure = f"; test slice ({test['examples']}): {', '.join(figures)}" if figures else ""
    dropped = version.get("longer_than_max_length") or 0
    left_out = (f"\n  {dropped} of {version['data']['train']['rows']} training examples were longer than "
                f"train.max_length = {version['recipe']['train']['max_length']} tokens and left out (raise it: "
                "--set train.max_length=...)" if dropped else "")
    return (f"trained {version['name']}: {version['steps']} steps, train loss "
            f"{version['train_loss']:.4f}{figure}{left_out}\n  adapter: {version['path']}")
