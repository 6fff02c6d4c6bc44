"""The pool as vectors: the units of one field (prompts, completions or pairs), their texts and embeddings."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from curate.errors import CurateError
from curate.ids import text_key
from curate.models import ResolvedModel, resolve_model
from curate.pool.embed import SHARD_TEXTS, EmbeddingCache, EmbedResult, embed_texts, vectors_for
from curate.progress import Progress
from curate.project import Project
from curate.store import Connection, pool
from curate.store.model_versions import register_model

FIELDS = ("prompt", "completion", "pair")
# A pair's vector joins its prompt's vector and its completions' normalised sum, weighted so that
# cosine(pair, pair') = 1/3 cos(prompt, prompt') + 2/3 cos(a + b, a' + b'): A/B order does not matter,
# and pairs that only share a prompt stay far below a near-duplicate threshold.
PAIR_PROMPT_SHARE = 1 / 3


@dataclass
class PoolUnits:
    """Units of one field, in id order. ``parts[i]`` are the texts whose vectors make unit i."""

    field: str
    ids: list[str] = field(default_factory=list)
    parts: list[tuple[str, ...]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def texts(self) -> list[str]:
        """Every distinct text the units need embedded."""
        return list(dict.fromkeys(t for p in self.parts for t in p))

    def label(self, i: int, width: int = 160) -> str:
        """A short human-readable text for unit i (hover text, examples)."""
        if self.field != "pair":
            return _shorten(self.parts[i][0], width)
        prompt, a, b = self.parts[i]
        part = max(20, (width - 12) // 3)
        return f"{_shorten(prompt, part)} | A: {_shorten(a, part)} | B: {_shorten(b, part)}"


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def default_field(conn: Connection) -> str:
    """Pairs when the project has any, else prompts."""
    return "pair" if pool.has_pairs(conn) else "prompt"


def pool_units(conn: Connection, field_name: str) -> PoolUnits:
    """All units of ``field_name`` in the project."""
    if field_name not in FIELDS:
        raise CurateError(f"unknown field '{field_name}' (fields: {', '.join(FIELDS)})")
    units = PoolUnits(field_name)
    units.ids, units.parts = pool.unit_parts(conn, field=field_name)
    return units


def unit_vectors(units: PoolUnits, cache: EmbeddingCache) -> np.ndarray:
    """One unit-length float32 vector per unit (pairs: prompt and completions, see PAIR_PROMPT_SHARE)."""
    if not len(units):
        raise CurateError(f"the pool has no {units.field}s: ingest data first")
    if units.field != "pair":
        return vectors_for([p[0] for p in units.parts], cache)
    return pair_vectors(*(vectors_for([p[i] for p in units.parts], cache) for i in range(3)))


def pair_vectors(prompts: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Unit vectors of pairs from the vectors of their prompts and completions (see PAIR_PROMPT_SHARE)."""
    both = a + b
    both /= np.maximum(np.linalg.norm(both, axis=1, keepdims=True), 1e-12)
    return np.hstack([np.sqrt(PAIR_PROMPT_SHARE) * prompts, np.sqrt(1 - PAIR_PROMPT_SHARE) * both]).astype(np.float32)


def project_model(project: Project, name: str | None) -> ResolvedModel:
    """The embedding model ``name``, or the project's configured one."""
    return resolve_model(name or project.config.models.embedding)


def embed_pool(project: Project, *, model: str | None = None, field_name: str | None = None,
               batch_tokens: int | None = None, shard_size: int = SHARD_TEXTS, device: str | None = None,
               engine: str | None = None, progress: Progress | None = None) -> EmbedResult:
    """Embed every text of the pool (or of one field) that the cache lacks, on ``device`` (default: [compute]
    device), in batches of at most ``batch_tokens`` padded tokens (default: by device); register the model."""
    resolved = project_model(project, model)
    with project.store.read() as conn:
        fields = [field_name] if field_name else ["prompt", "completion"]
        texts = list(dict.fromkeys(t for f in fields for t in pool_units(conn, f).texts()))
    if not texts:
        raise CurateError("the pool is empty: ingest data first (curate ingest FILE)")
    result = embed_texts(texts, resolved, EmbeddingCache(project.root / "cache", resolved), batch_tokens=batch_tokens,
                         shard_size=shard_size,
                         compute=project.config.compute.resolve_engine(device, engine=engine),
                         progress=progress)
    with project.store.write() as conn:
        register_model(conn, resolved, kind="embedding")
    return result


def embedded_units(project: Project, field_name: str | None = None, *,
                   model: str | None = None) -> tuple[PoolUnits, EmbeddingCache]:
    """Units of a field (default: pairs if any, else prompts) and the cache that holds all their texts."""
    resolved = project_model(project, model)
    with project.store.read() as conn:
        units = pool_units(conn, field_name or default_field(conn))
    cache = EmbeddingCache(project.root / "cache", resolved)
    missing = sum(text_key(t) not in cache for t in units.texts())
    if missing:
        raise CurateError(f"{missing} texts of the pool have no embedding from '{resolved.name}': run `curate embed`"
                          + (f" --model {resolved.name}" if model else ""))
    return units, cache


def load_pool(project: Project, field_name: str | None = None, *,
              model: str | None = None) -> tuple[PoolUnits, np.ndarray, ResolvedModel]:
    """Units of a field (default: pairs if any, else prompts) and their vectors from the cache."""
    units, cache = embedded_units(project, field_name, model=model)
    return units, unit_vectors(units, cache), cache.model
