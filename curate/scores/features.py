"""What a preference learner sees of a pair, computed one way for the committee, the report's learning curve,
selection, stream mode and simulate: d = f(A) − f(B), where f is a completion's embedding or its LM states, and with
``+length`` (``embedding+length``, ``lm+length``) also its length: log(1 + characters) and log(1 + words). Length
is the trivial baseline every learner is reported beside; as two features it lets the learner weigh it against
the content (docs/benchmarks.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from curate.compute import Compute
from curate.config import FEATURES
from curate.errors import CurateError
from curate.models import ResolvedModel
from curate.pool.embed import EmbeddingCache, vectors_for
from curate.pool.units import PoolUnits
from curate.progress import Progress
from curate.project import Project
from curate.rendering import Content
from curate.scores.states import DEFAULT_LAYER

Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> one embedding per text


def check_features(features: str) -> str:
    """``features`` if it names what a learner can see of a completion (``FEATURES``), else a one-line error."""
    if features not in FEATURES:
        raise CurateError(f"unknown features '{features}' (features: {', '.join(FEATURES)})")
    return features


LENGTH = "+length"


def length_differences(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    """log(1 + characters) and log(1 + words) of each A minus those of its B (pairs x 2)."""
    def lengths(texts: Sequence[str]) -> np.ndarray:
        return np.log1p(np.array([[len(t), len(t.split())] for t in texts], dtype=np.float64).reshape(-1, 2))

    return (lengths(a) - lengths(b)).astype(np.float32)


def with_length(d: np.ndarray, features: str, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    """``d`` with the length differences appended where ``features`` asks for them."""
    return np.hstack([d, length_differences(a, b)]).astype(d.dtype) if features.endswith(LENGTH) else d


def embedding_differences(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """d = f(A) − f(B) from the embeddings of each pair's completions."""
    return np.asarray(a) - np.asarray(b)


def pair_differences(prompts: Sequence[Content], a: Sequence[Content], b: Sequence[Content], *, features: str,
                     embed: Embed | None = None, policy: str | None = None, cache: Path | None = None,
                     layer: int = DEFAULT_LAYER, compute: Compute | None = None,
                     progress: Progress | None = None) -> tuple[np.ndarray, int]:
    """d = f(A) − f(B) for each pair, and how many LM states were computed (0 for embeddings). f is the
    completion's embedding of its text (``features="embedding"``: ``embed`` gives it) or its standardised states
    under the causal LM ``policy`` after ``layer`` decoder layers, in its prompt's context as
    ``curate.rendering`` renders it (``"lm"``; cached under ``cache``)."""
    texts_a, texts_b = [c.text for c in a], [c.text for c in b]
    if check_features(features).removesuffix(LENGTH) == "embedding":
        assert embed is not None, "embedding features need embed"
        vectors = embed([*texts_a, *texts_b])  # one batch, as stream mode encodes a pair
        return with_length(embedding_differences(vectors[:len(a)], vectors[len(a):]), features, texts_a, texts_b), 0
    assert policy is not None and cache is not None, "LM features need a policy and a cache"
    from curate.scores.states import pair_state_differences

    d, computed = pair_state_differences(prompts, a, b, cache=cache, model=policy, layer=layer, compute=compute,
                                         progress=progress)
    return with_length(d, features, texts_a, texts_b), computed


def unit_differences(units: PoolUnits, cache: EmbeddingCache) -> np.ndarray:
    """d from the cached embeddings of the completions of every pair unit of the pool."""
    return embedding_differences(*(vectors_for([p[i] for p in units.parts], cache) for i in (1, 2)))


def project_pair_features(project: Project, *, features: str, model: str | None = None, layer: int = DEFAULT_LAYER,
                          device: str | None = None, engine: str | None = None, progress: Progress | None = None
                          ) -> tuple[list[str], np.ndarray, ResolvedModel, int]:
    """The project's pair ids, d for each, the model f comes from, and how many LM states were computed. f is
    the completion's embedding (``features="embedding"``, ``model``: the embedding model) or its standardised LM
    states under the [models] policy (``"lm"``)."""
    from curate.pool.units import embedded_units
    from curate.scores.lm import resolve_scorer

    # an absent device is refused whatever the features
    compute = project.config.compute.resolve_engine(device, engine=engine)
    if check_features(features).removesuffix(LENGTH) == "embedding":
        units, cache = embedded_units(project, "pair", model=model)
        d = with_length(unit_differences(units, cache), features, *([p[i] for p in units.parts] for i in (1, 2)))
        return units.ids, d, cache.model, 0
    from curate.store.pool import pair_contents

    with project.store.read() as conn:
        ids, parts = pair_contents(conn)
    if not ids:
        raise CurateError("the pool has no pairs: ingest data first")
    cache_root, policy = project.root / "cache", project.config.models.policy
    prompts, a, b = (list(contents) for contents in zip(*parts, strict=True))
    d, computed = pair_differences(prompts, a, b, features=features, policy=policy, cache=cache_root, layer=layer,
                                   compute=compute, progress=progress)
    return ids, d, resolve_scorer(policy, cache=cache_root), computed
