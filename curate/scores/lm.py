"""Loading the language models that score a pool: causal LMs (policies, references) and reward models
(sequence classifiers), either whole folders or PEFT LoRA adapters on a base model.

Weights load from safetensors only, never with ``trust_remote_code``. An adapter is named by its
folder; its base (``base_model_name_or_path``) is resolved like any model name, so a LoRA trained on
the packaged SmolLM2 finds it in the project cache. An adapter's fingerprint covers its base too.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curate.compute import Compute
from curate.errors import CurateError, reason
from curate.models import NO_HUB_KERNELS, ResolvedModel, resolve_model

if TYPE_CHECKING:
    from curate.project import Project

CAUSAL = "CAUSAL_LM"
REWARD = "SEQ_CLS"


def adapter_config(path: Path) -> dict[str, Any] | None:
    """The PEFT adapter config of a folder, or None where the folder is a whole model."""
    file = path / "adapter_config.json"
    if not file.is_file():
        return None
    try:
        config = json.loads(file.read_text())
    except (OSError, ValueError) as err:
        raise CurateError(f"{file}: not a readable adapter config: {err}") from None
    if not isinstance(config, dict) or not config.get("base_model_name_or_path"):
        raise CurateError(f"{file}: the adapter names no base model (base_model_name_or_path)")
    return config


def resolve_scorer(name: str, *, cache: Path, project: Project | None = None) -> ResolvedModel:
    """Resolve a model or adapter name (with ``project``, also a model version it registered, such as
    ``dpo-lora-r1``); an adapter's fingerprint combines its own and its base's."""
    registered = None
    if project is not None and not Path(name).expanduser().is_dir():
        from curate.store.model_versions import version_path

        with project.store.read() as conn:
            registered = version_path(conn, name)
        if registered is not None and not Path(registered).is_dir():
            raise CurateError(f"model version '{name}' is registered but its folder {registered} is gone")
    resolved = resolve_model(registered or name, cache=cache)
    if registered is not None:
        resolved = replace(resolved, name=name)
    config = adapter_config(resolved.path)
    if config is None:
        return resolved
    base = resolve_model(config["base_model_name_or_path"], cache=cache)
    combined = hashlib.sha256(f"{resolved.fingerprint}+{base.fingerprint}".encode()).hexdigest()
    return ResolvedModel(name=name, path=resolved.path, fingerprint=combined)


def load_causal_lm(model: ResolvedModel, *, cache: Path | None = None, compute: Compute | None = None
                   ) -> tuple[Any, Any]:
    """Model (in eval mode, on ``compute``'s device and dtype: the CPU in float32 unless told) and tokenizer; an
    adapter folder is loaded onto its base with PEFT.

    A tokenizer without a pad token pads with its end token (padding is masked, so the choice does
    not change any score)."""
    from transformers import AutoModelForCausalLM

    config = causal_adapter_config(model)
    lm, tokenizer = _load(model, AutoModelForCausalLM, "a causal language model", config, cache, compute or Compute())
    _pad_fixup(model, lm, tokenizer)
    return lm, tokenizer


def causal_adapter_config(model: ResolvedModel) -> dict[str, Any] | None:
    """The adapter config of ``model`` (None for a whole model); an adapter of another task is refused."""
    config = adapter_config(model.path)
    if config is not None and config.get("task_type") not in (None, CAUSAL):
        raise CurateError(f"'{model.name}' is a {config.get('task_type')} adapter, not a causal language model "
                          "adapter (task_type CAUSAL_LM)")
    return config


def load_reward_model(model: ResolvedModel, *, cache: Path | None = None, compute: Compute | None = None
                      ) -> tuple[Any, Any]:
    """A reward model: a sequence classifier with one output (a whole model, or a SEQ_CLS LoRA adapter
    with its score head). Anything else is refused rather than given a random head."""
    from transformers import AutoModelForSequenceClassification

    config = adapter_config(model.path)
    if config is not None:
        if config.get("task_type") != REWARD:
            raise CurateError(f"'{model.name}' is a {config.get('task_type') or 'untyped'} adapter, not a reward "
                              "model: a reward adapter has task_type SEQ_CLS (curate train reward-lora makes one)")
    else:
        architectures = _architectures(model)
        if not any(a.endswith("ForSequenceClassification") for a in architectures):
            raise CurateError(f"'{model.name}' is not a reward model: its architectures are "
                              f"{', '.join(architectures) or 'not named'}; a reward model is a "
                              "*ForSequenceClassification with one output (or a LoRA reward adapter)")
    head = {"num_labels": 1} if config else {}  # an adapter's base has no head yet
    reward, tokenizer = _load(model, AutoModelForSequenceClassification, "a reward model", config, cache,
                              compute or Compute(), **head)
    if reward.config.num_labels != 1:
        raise CurateError(f"'{model.name}' has {reward.config.num_labels} outputs; a reward model has one")
    _pad_fixup(model, reward, tokenizer)
    return reward, tokenizer


def _architectures(model: ResolvedModel) -> list[str]:
    try:
        return list(json.loads((model.path / "config.json").read_text()).get("architectures") or [])
    except (OSError, ValueError):
        raise CurateError(f"'{model.name}' ({model.path}) has no readable config.json") from None


def _load(model: ResolvedModel, auto: Any, what: str, adapter: dict[str, Any] | None, cache: Path | None,
          compute: Compute, **kwargs: Any) -> tuple[Any, Any]:
    from transformers import AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()
    base = resolve_model(adapter["base_model_name_or_path"], cache=cache) if adapter else model
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # a classifier loaded from a causal LM base warns of the head the adapter brings
    try:
        loaded = auto.from_pretrained(base.path, dtype=compute.torch_dtype(), local_files_only=True,
                                      use_safetensors=True, **NO_HUB_KERNELS, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(_tokenizer_folder(model, base), local_files_only=True)
        if adapter:
            from peft import PeftModel

            if loaded.config.pad_token_id is None and tokenizer.pad_token_id is not None:
                loaded.config.pad_token_id = tokenizer.pad_token_id
            with warnings.catch_warnings():  # PEFT calls a transformers method deprecated in favour of another
                warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")
                loaded = PeftModel.from_pretrained(loaded, model.path, is_trainable=False)
            if adapter.get("peft_type") == "LORA":  # folded into the weights: inference runs at the base's speed
                loaded = loaded.merge_and_unload()
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise CurateError(f"model '{model.name}' cannot be loaded as {what}: {reason(err)}") from None
    finally:
        logging.set_verbosity(verbosity)
    loaded.to(compute.device).eval()
    return loaded, tokenizer


def _tokenizer_folder(model: ResolvedModel, base: ResolvedModel) -> Path:
    """An adapter's own tokenizer where it saved one, else its base's."""
    return model.path if (model.path / "tokenizer_config.json").is_file() else base.path


def load_tokenizer(model: ResolvedModel, *, cache: Path | None = None) -> tuple[Any, int]:
    """The tokenizer ``load_causal_lm`` gives with the model (padding as there), and the model's context length,
    without loading its weights (an adapter of another task is refused as there)."""
    from transformers import AutoConfig, AutoTokenizer

    adapter = causal_adapter_config(model)
    base = resolve_model(adapter["base_model_name_or_path"], cache=cache) if adapter else model
    try:
        tokenizer = AutoTokenizer.from_pretrained(_tokenizer_folder(model, base), local_files_only=True)
        config = AutoConfig.from_pretrained(base.path, local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        raise CurateError(f"model '{model.name}' has no tokenizer or config to read: {reason(err)}") from None
    _pad_fixup(model, None, tokenizer)
    return tokenizer, getattr(config, "max_position_embeddings", None) or 1 << 30


def _pad_fixup(model: ResolvedModel, loaded: Any, tokenizer: Any) -> None:
    """Pad with the end token where the tokenizer has no pad token (as TRL does), and tell the model."""
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise CurateError(f"the tokenizer of '{model.name}' has neither a pad nor an end token to pad with")
        tokenizer.pad_token = tokenizer.eos_token
    if loaded is not None and getattr(loaded.config, "pad_token_id", None) is None:
        loaded.config.pad_token_id = tokenizer.pad_token_id


def model_paths(*models: ResolvedModel) -> dict[str, Any]:
    """What a score run records of its models, so status can tell when their files change."""
    return {"models": [{"name": m.name, "path": str(m.path), "fingerprint": m.fingerprint} for m in models]}


def changed_models(config: dict[str, Any], *, cache: Path) -> list[str]:
    """Names of a run's models whose folders changed or vanished since the run."""
    changed = []
    for entry in config.get("models", []):
        try:
            same = resolve_scorer(entry["path"], cache=cache).fingerprint == entry["fingerprint"]
        except CurateError:
            same = False
        if not same:
            changed.append(entry["name"])
    return changed
