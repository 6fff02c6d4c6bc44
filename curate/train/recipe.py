"""Training recipes: YAML files (packaged ones in ``curate.recipes``, or your own) parsed strictly into typed
dataclasses. An unknown or misspelt key is an error naming the file, the line, the key and the valid keys;
``--set section.key=value`` overrides go through the same checks."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from curate.config import from_mapping
from curate.errors import ConfigError
from curate.vocabulary import TrainingKind

KINDS = tuple(TrainingKind)


@dataclass(frozen=True)
class LoraSection:
    """The LoRA adapter (PEFT ``LoraConfig``)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha < 1 or not 0 <= self.dropout < 1 or not self.target_modules:
            raise ConfigError("[lora] needs r >= 1, alpha >= 1, 0 <= dropout < 1 and at least one target module")


@dataclass(frozen=True)
class TrainSection:
    """Trainer arguments every recipe takes (TRL's config of the recipe's kind)."""

    learning_rate: float = 5e-5
    num_train_epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    max_length: int = 512
    warmup_steps: float = 0.0  # steps of linear warmup, or a share of all steps when below 1
    weight_decay: float = 0.0
    lr_scheduler_type: str = "linear"
    logging_steps: int = 10
    save_steps: int = 50  # checkpoints, for --resume
    seed: int = 0
    gradient_checkpointing: bool = True  # TRL's default: recompute activations, less memory for more compute
    eval_examples: int = 100  # frozen-test examples evaluated after training (0: none; all of them is slow on a CPU)

    def __post_init__(self) -> None:
        if self.learning_rate <= 0 or self.per_device_train_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ConfigError("[train] needs learning_rate > 0, per_device_train_batch_size >= 1 and "
                              "gradient_accumulation_steps >= 1")
        if self.max_length < 8 or self.logging_steps < 1 or self.save_steps < 1 or self.eval_examples < 0:
            raise ConfigError("[train] needs max_length >= 8, logging_steps >= 1, save_steps >= 1 and "
                              "eval_examples >= 0")


@dataclass(frozen=True)
class SftTrain(TrainSection):
    completion_only_loss: bool = True  # loss on the completion only, not the prompt


@dataclass(frozen=True)
class DpoTrain(TrainSection):
    beta: float = 0.1
    loss_type: str = "sigmoid"


@dataclass(frozen=True)
class RewardTrain(TrainSection):
    center_rewards_coefficient: float = 0.0


@dataclass(frozen=True)
class KtoTrain(TrainSection):
    beta: float = 0.1
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0


TRAIN_SECTIONS: dict[str, type[TrainSection]] = {"sft": SftTrain, "dpo": DpoTrain, "reward": RewardTrain,
                                                 "kto": KtoTrain}


@dataclass(frozen=True)
class Recipe:
    """One training recipe: what to train (``kind`` on ``model``), the adapter and the trainer arguments."""

    kind: str
    model: str
    lora: LoraSection
    train: TrainSection
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def packaged_recipes() -> dict[str, str]:
    """Name -> YAML text of the recipes that ship with curate."""
    folder = resources.files("curate.recipes")
    return {p.name.removesuffix(".yaml"): p.read_text(encoding="utf-8")
            for p in sorted(folder.iterdir(), key=lambda p: p.name) if p.name.endswith(".yaml")}


def load_recipe(name_or_path: str, *, overrides: list[str] | None = None) -> tuple[Recipe, str]:
    """The recipe called ``name_or_path`` (a packaged name, or a YAML file), with ``key=value`` overrides
    (``train.learning_rate=1e-4``, ``lora.r=8``, ``model=...``) applied; and where it came from."""
    import yaml

    packaged = packaged_recipes()
    path = Path(name_or_path)
    if name_or_path in packaged:
        text, where = packaged[name_or_path], f"recipe {name_or_path}"
    elif path.suffix in (".yaml", ".yml") and path.is_file():
        text, where = path.read_text(encoding="utf-8"), str(path)
    else:
        raise ConfigError(f"no recipe {name_or_path!r}: give a YAML file or one of {', '.join(packaged)} "
                          "(curate recipes list)")
    try:
        data = yaml.load(text, Loader=_loader())  # a SafeLoader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}{line}: invalid YAML ({getattr(err, 'problem', None) or err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a recipe is a mapping of keys (kind, model, lora, train)")
    for override in overrides or []:
        _apply(data, override)
    try:
        return parse_recipe(data, where=where), where
    except ConfigError as err:
        overridden = {o.partition("=")[0].strip().split(".")[-1] for o in overrides or []}
        raise ConfigError(_with_line(str(err), text, where, skip=overridden)) from None


def parse_recipe(data: dict[str, Any], *, where: str) -> Recipe:
    """Validate a recipe mapping strictly (every section, every key, every type)."""
    kind = data.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}: 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    known = {"kind", "model", "lora", "train", "description"}
    for key in data:
        if key not in known:
            import difflib

            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown key '{key}' in {where}{hint} (valid keys: {', '.join(sorted(known))})")
    model = data.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"{where}: 'model' must name a model (hub id, folder, or SmolLM2-135M-Instruct)")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{where}: 'description' must be text")
    lora = from_mapping(LoraSection, data.get("lora") or {}, where=f"{where} [lora]")
    train = from_mapping(TRAIN_SECTIONS[kind], data.get("train") or {}, where=f"{where} [train]")
    return Recipe(kind=kind, model=model, lora=lora, train=train, description=description)


def _apply(data: dict[str, Any], override: str) -> None:
    import yaml

    key, sep, raw = override.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts) or len(parts) > 2:
        raise ConfigError(f"--set takes section.key=value or key=value (train.learning_rate=1e-4), not {override!r}")
    try:
        value = yaml.load(raw, Loader=_loader()) if raw.strip() else raw  # a SafeLoader
    except yaml.YAMLError:
        value = raw
    if len(parts) == 1:
        data[parts[0]] = value
        return
    section = data.setdefault(parts[0], {})
    if not isinstance(section, dict):
        raise ConfigError(f"--set {override!r}: '{parts[0]}' is not a section")
    section[parts[1]] = value


def _loader() -> Any:
    """PyYAML's SafeLoader reading ``1e-4`` as a number, as YAML 1.2 does (1.1 wants ``1.0e-4``)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(
        r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+|\.[0-9_]+(?:[eE][-+]?[0-9]+)?)$"),
        list("-+0123456789."))
    return Loader


def _with_line(message: str, text: str, where: str, *, skip: set[str]) -> str:
    """Point a key error at its line in the recipe file, where the key is written there (not for a key that
    came from --set)."""
    found = re.search(r"unknown key '([^']+)'|'([^']+)' must be", message)
    key = next((g for g in found.groups() if g), None) if found else None
    if key and key not in skip:
        for number, line in enumerate(text.splitlines(), 1):
            if re.match(rf"\s*{re.escape(key)}\s*:", line):
                return message.replace(where, f"{where}:{number}", 1)
    return message
