"""The fast reward committee as a score run: M Bradley–Terry heads (``curate.learners.bradley_terry``)
fitted on the project's labelled pairs, each on a bootstrap resample; its disagreement is the signal
for what experts should rank."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, select

from curate.errors import CurateError
from curate.models import ResolvedModel
from curate.pool.embed import EmbeddingCache, vectors_for
from curate.pool.units import PoolUnits
from curate.progress import Progress
from curate.project import Project
from curate.scores.lm import model_paths
from curate.scores.states import DEFAULT_LAYER, FEATURES

NAMES = ("p_mean", "p_var", "vote_entropy", "bald")


def pair_differences(units: PoolUnits, cache: EmbeddingCache) -> np.ndarray:
    """d = f(A) − f(B) for every pair unit (f: the completion's cached embedding)."""
    return vectors_for([p[1] for p in units.parts], cache) - vectors_for([p[2] for p in units.parts], cache)


def _slice_count(conn: Connection) -> int:
    from sqlalchemy import func

    from curate.store.schema import Slice

    return int(conn.scalar(select(func.count()).select_from(Slice)) or 0)


@dataclass
class CommitteeResult:
    run_id: int
    pairs: int
    labelled: int
    members: int
    learner: str
    features: str
    computed: int  # LM states computed for this run (0: embeddings, or all states cached)


def score_committee(project: Project, *, learner: str | None = None, features: str | None = None,
                    layer: int | None = None, members: int | None = None, c: float | None = None,
                    model: str | None = None, random_state: int = 0,
                    progress: Progress | None = None) -> CommitteeResult:
    """Fit the learner ([learner] in curate.toml, or the arguments) on the project's labelled pairs (never
    the test or calibration slice) and score every pair: P(A ≻ B), its variance, the vote entropy and BALD
    (for the Laplace learner, over its posterior). ``model`` names the embedding model (embedding features;
    LM states come from the [models] policy); ``members`` applies to the committee only."""
    from curate.learners import make_learner
    from curate.scores.runs import save_run

    config = project.config.learner
    name, kind = learner or config.name, features or config.features
    layer, members, c = layer or config.layer, members or config.members, c or config.c
    options = {"c": c, "members": members, "random_state": random_state} if name == "committee" else {"c": c}
    estimator = make_learner(name, **options)
    ids, d, used, computed = committee_features(project, features=kind, model=model, layer=layer, progress=progress)
    from curate.labels import training_labels

    labels = training_labels(project)
    with project.store.read() as conn:
        slices = _slice_count(conn)
    labelled = [i for i, uid in enumerate(ids) if uid in labels]
    y = np.array([labels[ids[i]] for i in labelled])
    scores = estimator.fit(d[labelled], y).predict(d).scores(prefix="committee")
    run_id = save_run(project, kind="committee", unit="pair", model=used, ids=ids, names=NAMES,
                      values=np.column_stack([scores[f"committee.{n}"] for n in NAMES]),
                      config={"learner": name, "features": kind, **({"layer": layer} if kind == "lm" else {}),
                              **options, "labelled": len(labelled), "uses_labels": True, "slices": slices,
                              **(model_paths(used) if kind == "lm" else {})})
    return CommitteeResult(run_id=run_id, pairs=len(ids), labelled=len(labelled),
                           members=members if name == "committee" else 0, learner=name, features=kind,
                           computed=computed)


def committee_features(project: Project, *, features: str, model: str | None = None, layer: int = DEFAULT_LAYER,
                       progress: Progress | None = None) -> tuple[list[str], np.ndarray, ResolvedModel, int]:
    """Pair ids, d = f(A) − f(B) for each, the model f comes from, and how many LM states were computed.
    f is the completion's embedding (``features="embedding"``, ``model``: the embedding model) or its
    standardised LM states under the [models] policy (``"lm"``)."""
    from curate.pool.units import embedded_units, pool_units

    if features == "embedding":
        units, cache = embedded_units(project, "pair", model=model)
        return units.ids, pair_differences(units, cache), cache.model, 0
    if features not in FEATURES:
        raise CurateError(f"unknown features '{features}' (features: {', '.join(FEATURES)})")
    from curate.scores.lm import resolve_scorer
    from curate.scores.states import pair_state_differences

    with project.store.read() as conn:
        units = pool_units(conn, "pair")
    if not len(units):
        raise CurateError("the pool has no pairs: ingest data first")
    cache, policy = project.root / "cache", project.config.models.policy
    prompts, a, b = (list(texts) for texts in zip(*units.parts, strict=True))
    d, computed = pair_state_differences(prompts, a, b, cache=cache, model=policy, layer=layer, progress=progress)
    return units.ids, d, resolve_scorer(policy, cache=cache), computed
