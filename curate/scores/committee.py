"""The fast reward committee as a score run: M Bradley–Terry heads (``curate.learners.bradley_terry``)
fitted on the project's labelled pairs, each on a bootstrap resample; its disagreement is the signal
for what experts should rank."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.progress import Progress
from curate.project import Project
from curate.scores.features import project_pair_features
from curate.scores.lm import model_paths

NAMES = ("p_mean", "p_var", "vote_entropy", "bald", "margin_mean", "margin_std")


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
                    model: str | None = None, random_state: int = 0, device: str | None = None,
                    engine: str | None = None, progress: Progress | None = None) -> CommitteeResult:
    """Fit the learner ([learner] in curate.toml, or the arguments) on the project's labelled pairs (never
    the test or calibration slice) and score every pair: P(A ≻ B), its variance, the vote entropy and BALD
    (for the Laplace learner, over its posterior). ``model`` names the embedding model (embedding features;
    LM states come from the [models] policy, on ``device`` and ``engine``: default [compute]); ``members`` applies
    to the committee only."""
    from curate.learners import configured_learner
    from curate.scores.runs import save_run
    from curate.store import rounds

    config = project.config.learner
    name, kind, layer = learner or config.name, features or config.features, layer or config.layer
    estimator = configured_learner(config, name=name, random_state=random_state, members=members or None,
                                   c=c or None)
    options = {k: getattr(estimator, k) for k in estimator.options}
    ids, d, used, computed = project_pair_features(project, features=kind, model=model, layer=layer, device=device,
                                                   engine=engine, progress=progress)
    lm = kind.startswith("lm")
    from curate.labels import training_labels

    labels = training_labels(project)
    with project.store.read() as conn:
        slices = rounds.slice_count(conn)
    labelled = [i for i, uid in enumerate(ids) if uid in labels]
    y = np.array([labels[ids[i]] for i in labelled])
    scores = estimator.fit(d[labelled], y).predict(d).scores(prefix="committee")
    run_id = save_run(project, kind="committee", unit="pair", model=used, ids=ids, names=NAMES,
                      values=np.column_stack([scores[f"committee.{n}"] for n in NAMES]),
                      config={"learner": name, "features": kind, **({"layer": layer} if lm else {}),
                              **options, "labelled": len(labelled), "uses_labels": True, "slices": slices,
                              **(model_paths(used) if lm else {})})
    return CommitteeResult(run_id=run_id, pairs=len(ids), labelled=len(labelled),
                           members=options.get("members", 0), learner=name, features=kind,
                           computed=computed)
