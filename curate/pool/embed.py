"""Sentence-transformers embeddings with a content-addressed, resumable cache.

The cache for one model lives in ``cache/embeddings/<fingerprint>/`` as shards: ``<id>.keys.npy``
(16-byte SHA-256 prefixes of the texts) and ``<id>.vec.npy`` (normalised float32 rows), read
memory-mapped. A shard is written whole and renamed into place as soon as its texts are encoded,
so a run that is killed resumes where it stopped; two models never share a folder.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from curate.compute import Compute, pack
from curate.files import publish_text, staged
from curate.ids import text_key
from curate.models import NO_HUB_KERNELS, ResolvedModel
from curate.progress import Progress, no_progress

SHARD_TEXTS = 4096  # texts per shard: the most work a killed run loses (about a minute on 2 cores)
BATCH_TOKENS = {"cpu": 8192, "gpu": 131072}  # padded tokens one embedding batch may hold, by device
COMPACT_ABOVE = 256  # shards; more are merged into one on the next run


class EmbeddingCache:
    """Vectors of one model, keyed by text hash (``kind`` names what they are: embeddings, scores)."""

    def __init__(self, root: Path, model: ResolvedModel, *, kind: str = "embeddings") -> None:
        self.model = model
        self.dir = root / kind / model.fingerprint[:32]
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = self.dir / "model.json"
        if not meta.exists():
            publish_text(meta, json.dumps({"name": model.name, "path": str(model.path),
                                                 "fingerprint": model.fingerprint}))
        self._load_index()

    def _load_index(self) -> None:
        self._index: dict[bytes, tuple[int, int]] = {}  # key -> (shard number, row)
        self._shards: list[Path] = []
        for keys_path in sorted(self.dir.glob("*.keys.npy")):
            vec_path = self.dir / keys_path.name.replace(".keys.npy", ".vec.npy")
            try:  # a shard without vectors never landed whole; one may also vanish to another's compaction
                keys = np.load(keys_path).view("V16").ravel().tolist() if vec_path.exists() else None
            except FileNotFoundError:
                keys = None
            if keys is not None:
                self._register(vec_path, keys)

    def _register(self, vec_path: Path, keys: Iterable[bytes]) -> None:
        number = len(self._shards)
        self._shards.append(vec_path)
        for row, key in enumerate(keys):
            self._index.setdefault(key, (number, row))

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: bytes) -> bool:
        return key in self._index

    def add(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Write one shard: vectors first, keys last (a shard counts only once both are in place)."""
        shard = f"{time.time_ns():020d}-{os.getpid()}"
        vec_path = self.dir / f"{shard}.vec.npy"
        _atomic_save(vec_path, np.ascontiguousarray(vectors, dtype=np.float32))
        # raw 16-byte keys as uint8 rows (numpy's S16 would drop trailing zero bytes)
        _atomic_save(self.dir / f"{shard}.keys.npy", np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, 16))
        self._register(vec_path, keys)

    def get(self, keys: Sequence[bytes]) -> np.ndarray:
        """The vectors of ``keys`` (all must be cached), in order."""
        try:
            return self._get(keys)
        except FileNotFoundError:  # another process compacted the shards meanwhile: read the new ones
            self._load_index()
            return self._get(keys)

    def _get(self, keys: Sequence[bytes]) -> np.ndarray:
        where = np.array([self._index[k] for k in keys], dtype=np.int64).reshape(-1, 2)
        out: np.ndarray | None = None
        for shard in np.unique(where[:, 0]):
            positions = np.nonzero(where[:, 0] == shard)[0]
            rows = where[positions, 1]
            order = np.argsort(rows)  # memory-mapped reads in file order
            vectors = np.load(self._shards[shard], mmap_mode="r")
            if out is None:
                out = np.empty((len(keys), vectors.shape[1]), dtype=np.float32)
            out[positions[order]] = vectors[rows[order]]
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    def compact(self) -> None:
        """Merge the shards into one when there are many: the new shard lands before the old ones go."""
        if len(self._shards) <= COMPACT_ABOVE:
            return
        keys = list(self._index)
        vectors = self.get(keys)
        old = self._shards
        self._shards, self._index = [], {}
        self.add(keys, vectors)
        for vec_path in old:
            vec_path.with_name(vec_path.name.replace(".vec.npy", ".keys.npy")).unlink(missing_ok=True)
            vec_path.unlink(missing_ok=True)


@dataclass
class EmbedResult:
    model: str
    fingerprint: str
    texts: int  # distinct texts asked for
    computed: int  # encoded in this run
    cached: int  # already in the cache


def load_encoder(model: ResolvedModel, *, compute: Compute | None = None) -> Any:
    """A SentenceTransformer from a local folder, with the hub switched off, on ``compute``'s device and dtype
    (the CPU in float32 unless told)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging

    logging.disable_progress_bar()  # curate shows its own progress
    compute = compute or Compute()
    encoder = SentenceTransformer(str(model.path), device=compute.device, local_files_only=True,
                                  model_kwargs=dict(NO_HUB_KERNELS))
    return encoder.to(compute.torch_dtype())


def embed_texts(texts: Sequence[str], model: ResolvedModel, cache: EmbeddingCache, *, batch_tokens: int | None = None,
                shard_size: int = SHARD_TEXTS, encoder: Any = None, compute: Compute | None = None,
                progress: Progress | None = None) -> EmbedResult:
    """Encode the texts that are not cached yet (``shard_size`` at a time) and cache them; a shard runs in batches
    of similar length holding at most ``batch_tokens`` padded tokens (default: ``batch_token_budget``)."""
    unique = {text_key(t): t for t in texts}
    todo = [(k, t) for k, t in unique.items() if k not in cache]
    todo.sort(key=lambda kt: len(kt[1]), reverse=True)
    if todo:
        compute = compute or Compute()
        budget = batch_tokens or batch_token_budget(compute.device)
        shards = [todo[i:i + shard_size] for i in range(0, len(todo), shard_size)]
        done = compute.map_shards([[t for _, t in shard] for shard in shards],
                                  load=(lambda: encoder) if encoder is not None else partial(load_encoder, model,
                                                                                            compute=compute),
                                  work=partial(encode_texts, budget=budget))
        for i, vectors in (progress or no_progress)(done, f"embedding {len(todo)} texts", len(shards)):
            cache.add([key for key, _ in shards[i]], vectors)
        cache.compact()
    return EmbedResult(model=model.name, fingerprint=model.fingerprint, texts=len(unique), computed=len(todo),
                       cached=len(unique) - len(todo))


def encode_texts(encoder: Any, texts: Sequence[str], *, budget: int) -> np.ndarray:
    """Normalised float32 embeddings of ``texts``, in order, in batches of at most ``budget`` padded tokens."""
    batches = token_batches(encoder, texts, budget)
    vectors = np.concatenate([encoder.encode([texts[i] for i in batch], batch_size=len(batch),
                                             normalize_embeddings=True, convert_to_numpy=True,
                                             show_progress_bar=False).astype(np.float32) for batch in batches])
    out = np.empty_like(vectors)
    out[[i for batch in batches for i in batch]] = vectors
    return out


def batch_token_budget(device: str) -> int:
    """The padded tokens one embedding batch holds by default on ``device``."""
    return BATCH_TOKENS["cpu" if device == "cpu" else "gpu"]


def token_batches(encoder: Any, texts: Sequence[str], budget: int) -> list[list[int]]:
    """Positions of ``texts`` in batches of similar token length (longest first), each holding at most ``budget``
    padded tokens (a text longer than the budget alone), so short texts share big batches and long ones small."""
    limit = encoder.max_seq_length or 512
    lengths = [len(ids) for ids in encoder.tokenizer(list(texts), add_special_tokens=True, truncation=True,
                                                      max_length=limit)["input_ids"]]
    return pack(sorted(range(len(texts)), key=lambda i: -lengths[i]),
                lambda run: len(run) * lengths[run[0]] <= budget)


def vectors_for(texts: Sequence[str], cache: EmbeddingCache) -> np.ndarray:
    """Cached vectors of ``texts`` in order (embed them first)."""
    return cache.get([text_key(t) for t in texts])


def _atomic_save(path: Path, array: np.ndarray) -> None:
    with staged(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)
