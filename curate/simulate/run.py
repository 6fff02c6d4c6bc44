"""``curate simulate``: does a strategy beat random on this data? Learning curves from an oracle that
reveals known labels, over several frozen test splits and seeds, and the label-efficiency ratio.

For each split (test pairs grouped by topic, or by cluster where the data names no topic) and seed,
every strategy starts from the same random cold-start set; each round the learner is fitted on the
votes revealed so far (several votes on a pair make a soft label), its accuracy on the frozen test is
recorded, the strategy chooses the next ``budget_per_round`` requests and the oracle answers them
(``gold``: the gold label; ``votes``: the pair's next annotator vote, so the noise is real; the
``relabel`` policy may ask about a pair again). Accuracy is always measured against the gold test
labels, and the target against a learner fitted on the pool's gold labels. ``ler[s]`` = labels random
needs to reach the target accuracy ÷ labels ``s`` needs (interpolated on the mean curves); ``ler_ci[s]``
is an 80% bootstrap interval over the split x seed curves; ``stopping[s]`` is where ``s``'s mean curve
stopped paying; ``gain_at[s][B]`` is the accuracy ``s`` gains over random at a budget of B labels (200, 500 and
the last round's, where the curves reach them), with an 80% interval over the paired runs: the answer where the
target sits on flat curves and the ratio says little. The output follows the contract in DESIGN.md.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curate.compute import Compute
from curate.errors import CurateError
from curate.options import key_values
from curate.progress import Progress, no_progress
from curate.rendering import Content
from curate.simulate.efficiency import (
    STOP_GAIN,
    STOP_WINDOW,
    bootstrap_interval,
    gain_over_random,
    label_efficiency,
    labels_to_reach,
    stopping_point,
)

ORACLES = ("gold", "votes")
TARGET_SHARE = 0.98  # of the full-pool accuracy
GAIN_BUDGETS = (200, 500)  # labels at which the gain over random is read (and the last round's)


@dataclass
class SimulationData:
    name: str
    prompts: list[Content]  # each with its turns where the data has them (what LM features render)
    a: list[Content]
    b: list[Content]
    labels: np.ndarray  # the final label (curate.labels' rule): 1 where A (the file's first completion) won
    topics: np.ndarray | None  # a grouping the data names, for grouped test splits
    # each annotator's A/B vote (1: A) where the file has them, which the votes oracle reveals one at a time so the
    # simulated learner meets the crowd's noise; a tie vote says nothing about A vs B and gold is not a vote
    votes: list[list[int]]


def read_preferences(path: Path, *, mapping: str | None = None, label_values: str | None = None,
                     progress: Progress | None = None) -> SimulationData:
    """Labelled pairs of a preference file (any layout ``curate ingest`` reads), labelled by the project's label
    rule (``curate.labels``: gold, else the crowd's plurality, else the data set's label); pairs whose final
    label is not A or B, unlabelled pairs and pairs that compare a text with itself (as ``curate select``
    leaves them out: nothing to rank) are left out."""
    from curate.ids import normalise_text
    from curate.ingest.pipeline import read_file

    read = read_file(Path(path), "auto", mapping, label_values, progress or no_progress)
    read.refuse_bad_rows(f"{len(read.rejects)} bad rows; simulate needs a clean file: `curate ingest --skip-bad` "
                         "writes the good rows' reasons")
    from curate.labels.rule import decide
    from curate.labels.vocabulary import VOTER_SOURCES, Choice, Source
    from curate.labels.votes import Vote, gather

    rows = [row for _, row in read.rows if row.is_pair and normalise_text(row.completions[0].text) !=
            normalise_text(row.completions[1].text)]
    judged = gather(Vote(str(i), Source(j.source), j.annotator, Choice(j.choice))
                    for i, row in enumerate(rows) for j in row.judgments if j.choice is not None)
    final = decide(judged)  # the label rule a project applies to imported labels: gold, the crowd, the data set
    prompts, a, b, labels, topics, votes_of = [], [], [], [], [], []
    for i, row in enumerate(rows):
        label = final.get(str(i))
        if label is None or label.preference is None:
            continue
        prompts.append(Content(normalise_text(row.prompt.text), row.prompt.messages))
        a.append(Content(normalise_text(row.completions[0].text), row.completions[0].messages))
        b.append(Content(normalise_text(row.completions[1].text), row.completions[1].messages))
        labels.append(label.preference)
        topics.append(row.meta.get("topic"))
        votes_of.append([int(j.choice == Choice.A) for j in row.judgments
                         if j.source in VOTER_SOURCES and j.choice in (Choice.A, Choice.B)])
    if len(labels) < 100:
        raise CurateError(f"{path}: {len(labels)} labelled pairs; simulate needs at least 100")
    named = all(isinstance(t, str) for t in topics) and len(set(topics)) >= 5
    return SimulationData(name=Path(path).name, prompts=prompts, a=a, b=b, labels=np.array(labels),
                          topics=np.unique(topics, return_inverse=True)[1] if named else None, votes=votes_of)


def grouped_splits(groups: np.ndarray, *, test_frac: float, splits: int, seed: int = 0) -> list[np.ndarray]:
    """``splits`` test masks, each made of whole groups (in a random order per split) until ``test_frac``
    of the pairs is reached."""
    out = []
    for split in range(splits):
        rng = np.random.default_rng([seed, split])
        test = np.zeros(len(groups), dtype=bool)
        for group in rng.permutation(np.unique(groups)):
            if test.mean() >= test_frac:
                break
            test |= groups == group
        out.append(test)
    return out


SIMULATED = ("random", "uncertainty", "qbc", "coreset", "cluster", "hybrid", "model-change", "bal-pm",
             "pair-choice")
RELABEL = "relabel"  # noise-aware: another vote on a contested pair, or a new pair (simulate.relabel)


class Oracle:
    """Answers requests for votes on the pool's pairs of one split and seed. ``gold``: a pair's gold label,
    once (asking again would teach nothing). ``votes``: the pair's annotators' votes one at a time, in an
    order drawn once (so every strategy meets the same noise); a pair without votes answers with its label
    once."""

    def __init__(self, data: SimulationData, pool: np.ndarray, kind: str, rng: np.random.Generator) -> None:
        if kind == "gold":
            self.votes = [[int(data.labels[i])] for i in pool.tolist()]
        else:
            self.votes = [[int(v) for v in rng.permutation(data.votes[i])] if data.votes[i] else
                          [int(data.labels[i])] for i in pool.tolist()]
        self.available = np.array([len(v) for v in self.votes])

    def ask(self, positions: np.ndarray, asked: np.ndarray, for_a: np.ndarray) -> None:
        """One more vote for each position: counted in ``asked``, and in ``for_a`` where it prefers A."""
        for i in positions.tolist():
            for_a[i] += self.votes[i][asked[i]]
            asked[i] += 1


def parse_strategy(spec: str) -> tuple[str, dict[str, str]]:
    """``name`` or ``name:key=value:key=value`` (e.g. ``qbc:measure=bald``) -> (name, options)."""
    name, *parts = spec.split(":")
    options = key_values(parts, error=lambda _: f"strategy '{spec}': options are key=value after the name, e.g. "
                                                "qbc:measure=bald")
    if name not in (*SIMULATED, RELABEL):
        raise CurateError(f"simulate runs {', '.join((*SIMULATED, RELABEL))}; '{name}' needs scores an oracle "
                          "cannot give")
    return name, options


def pair_features(data: SimulationData, *, model: str, cache_root: Path, features: str = "embedding",
                  lm_model: str | None = None, layer: int | None = None, compute: Compute | None = None,
                  progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(pair vectors, f(A) − f(B)), cached under ``cache_root``. The pair vectors (what diversity is measured
    on) come from the embedding model; f is that embedding, or with ``features="lm"`` the standardised LM
    states of ``lm_model`` (default: the packaged SmolLM2) after ``layer`` decoder layers."""
    from curate.models import DEFAULT_POLICY, resolve_model
    from curate.pool.embed import EmbeddingCache, embed_texts, vectors_for
    from curate.pool.units import pair_vectors
    from curate.scores.features import check_features, pair_differences
    from curate.scores.states import DEFAULT_LAYER

    check_features(features)
    resolved = resolve_model(model, cache=cache_root)
    cache = EmbeddingCache(cache_root, resolved)
    texts = [[c.text for c in contents] for contents in (data.prompts, data.a, data.b)]
    embed_texts([t for part in texts for t in part], resolved, cache, compute=compute, progress=progress)
    vectors = pair_vectors(*(vectors_for(part, cache) for part in texts))
    d, _ = pair_differences(data.prompts, data.a, data.b, features=features, embed=lambda t: vectors_for(t, cache),
                            policy=lm_model or DEFAULT_POLICY, cache=cache_root,
                            layer=DEFAULT_LAYER if layer is None else layer, compute=compute, progress=progress)
    return vectors, d


def check_request(data: SimulationData, *, strategies: Sequence[str], oracle: str, learner: str, test_frac: float,
                  budget_per_round: int, rounds: int, splits: int, seeds: Sequence[int],
                  cold_start: int | None = None, target_share: float = TARGET_SHARE) -> dict[str, tuple[str, dict]]:
    """Every strategy spec (random first) parsed and checked, and the rest of a simulate request: one-line
    errors before any feature is computed (a budget past a split's pool too: exactly where the data names topics,
    else against the largest pool a split can leave)."""
    from curate.learners import make_learner
    from curate.strategies import make_strategy

    names = ["random", *dict.fromkeys(s for s in strategies if s != "random")]
    parsed = {spec: parse_strategy(spec) for spec in names}
    if oracle not in ORACLES:
        raise CurateError(f"unknown oracle '{oracle}' (oracles: {', '.join(ORACLES)})")
    for spec, (name, options) in parsed.items():
        if name == RELABEL:
            if options:
                raise CurateError(f"strategy '{spec}': relabel takes no options")
            if oracle != "votes":
                raise CurateError("relabel asks for more votes on contested pairs: it needs --oracle votes")
        else:
            make_strategy(name, **options)
    if not 0 < test_frac < 1 or budget_per_round < 1 or rounds < 1 or splits < 1 or not seeds:
        raise CurateError("simulate needs 0 < test_frac < 1, budget_per_round >= 1, rounds >= 1, splits >= 1 and "
                          "at least one seed")
    if not 0.5 <= target_share <= 1:
        raise CurateError(f"the target share of the full-pool accuracy must be 0.5 to 1, not {target_share}")
    make_learner(learner)
    if any(name == "pair-choice" for name, _ in parsed.values()):
        sizes = np.bincount(prompt_groups(data))
        if sizes[sizes > 1].sum() < len(data.labels) / 2:
            raise CurateError(f"{data.name}: only {sizes[sizes > 1].sum()} of {len(data.labels)} pairs share their "
                              "prompt with another pair, so pair-choice has little to choose (it needs prompts with "
                              "several completions)")
    if data.topics is not None:
        pool = min(int((~test).sum()) for test in grouped_splits(data.topics, test_frac=test_frac, splits=splits))
    else:  # split by clusters of the features, computed later: a split's test holds at least test_frac of the pairs
        pool = len(data.labels) - int(np.ceil(test_frac * len(data.labels)))
    check_budget((cold_start or budget_per_round) + rounds * budget_per_round, pool)
    if oracle == "votes":
        has_votes = np.array([bool(v) for v in data.votes])
        if has_votes.mean() < 0.5:
            raise CurateError(f"{data.name}: only {has_votes.sum()} of {len(has_votes)} pairs carry annotator votes; "
                              "--oracle votes needs them (use --oracle gold)")
    return parsed


def longer_accuracy(data: SimulationData, rows: np.ndarray) -> float:
    """Accuracy of "the longer completion (in characters) wins" on ``rows``; a tie counts half."""
    a = np.array([len(data.a[i].text) for i in rows])
    b = np.array([len(data.b[i].text) for i in rows])
    return float(np.mean(np.where(a == b, 0.5, (a > b) == data.labels[rows])))


def prompt_groups(data: SimulationData) -> np.ndarray:
    """One group per prompt (pairs of one prompt compare its completions): pair choice's ``record`` grouping."""
    return np.unique([p.text for p in data.prompts], return_inverse=True)[1]


def check_budget(labels: int, pool: int) -> None:
    if labels > pool:
        raise CurateError(f"{labels} labels is more than a split's pool ({pool} pairs); lower --rounds or "
                          "--budget-per-round")


def features_label(features: str, lm_model: str | None = None, layer: int | None = None) -> str:
    """What a result's ``features`` says: ``embedding``, or ``lm:<model>@<layer>``."""
    from curate.models import DEFAULT_POLICY
    from curate.scores.states import DEFAULT_LAYER

    if not features.startswith("lm"):
        return features
    return (f"lm:{(lm_model or DEFAULT_POLICY).rsplit('/', 1)[-1]}@{DEFAULT_LAYER if layer is None else layer}"
            + features.removeprefix("lm"))


def run_simulation(path: Path, *, mapping: str | None = None, label_values: str | None = None,
                   strategies: Sequence[str], budget_per_round: int = 50, rounds: int = 10,
                   seeds: Sequence[int] = (0, 1, 2), splits: int = 5, test_frac: float = 0.2, oracle: str = "gold",
                   learner: str = "committee", features: str = "lm",
                   model: str = "sentence-transformers/all-MiniLM-L6-v2", lm_model: str | None = None,
                   layer: int | None = None, stop_gain: float = STOP_GAIN, target_share: float = TARGET_SHARE,
                   cache: Path | None = None,
                   device: str = "auto", engine: str = "local", progress: Progress | None = None
                   ) -> tuple[SimulationData, dict[str, Any], dict[str, float]]:
    """``curate simulate`` as one call: read the labelled file, check the request (before any feature is
    computed), compute the pair features (cached under ``cache``, default ``~/.cache/curate``, on ``device``)
    and simulate.
    The data, the contract's dict and the seconds each strategy took."""
    data = read_preferences(path, mapping=mapping, label_values=label_values, progress=progress)
    parsed = check_request(data, strategies=strategies, oracle=oracle, learner=learner, test_frac=test_frac,
                           budget_per_round=budget_per_round, rounds=rounds, splits=splits, seeds=seeds,
                           target_share=target_share)
    compute = Compute.of(device, engine=engine)
    vectors, differences = pair_features(data, model=model, cache_root=cache or default_cache(), features=features,
                                         lm_model=lm_model, layer=layer, compute=compute, progress=progress)
    result, seconds = _simulate(data, vectors, differences, parsed, budget_per_round=budget_per_round, rounds=rounds,
                                seeds=seeds, splits=splits, test_frac=test_frac, oracle=oracle, learner=learner,
                                stop_gain=stop_gain, target_share=target_share,
                                features=features_label(features, lm_model, layer), progress=progress)
    return data, result, seconds


def default_cache() -> Path:
    """Where simulate caches embeddings and LM states unless told: ``$XDG_CACHE_HOME/curate`` or ``~/.cache/curate``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "curate"


def simulate(data: SimulationData, vectors: np.ndarray, differences: np.ndarray, *, strategies: Sequence[str],
             budget_per_round: int = 50, rounds: int = 10, seeds: Sequence[int] = (0, 1, 2), splits: int = 5,
             test_frac: float = 0.2, oracle: str = "gold", learner: str = "committee", cold_start: int | None = None,
             stop_gain: float = STOP_GAIN, target_share: float = TARGET_SHARE, features: str | None = None,
             progress: Progress | None = None) -> tuple[dict[str, Any], dict[str, float]]:
    """Learning curves of every strategy (and random) and their label-efficiency ratios, as the contract's
    dict (the same inputs and seeds give the same dict), and the seconds each strategy took. A strategy is
    a name with options (``parse_strategy``); every request for a label costs one label. ``features``, where
    given, names what ``differences`` are in the result (``features_label``)."""
    parsed = check_request(data, strategies=strategies, oracle=oracle, learner=learner, test_frac=test_frac,
                           budget_per_round=budget_per_round, rounds=rounds, splits=splits, seeds=seeds,
                           cold_start=cold_start, target_share=target_share)
    return _simulate(data, vectors, differences, parsed, budget_per_round=budget_per_round, rounds=rounds,
                     seeds=seeds, splits=splits, test_frac=test_frac, oracle=oracle, learner=learner,
                     cold_start=cold_start, stop_gain=stop_gain, target_share=target_share, features=features,
                     progress=progress)


def _simulate(data: SimulationData, vectors: np.ndarray, differences: np.ndarray,
              parsed: dict[str, tuple[str, dict]], *, budget_per_round: int, rounds: int, seeds: Sequence[int],
              splits: int, test_frac: float, oracle: str, learner: str, stop_gain: float, features: str | None,
              target_share: float = TARGET_SHARE, cold_start: int | None = None, progress: Progress | None = None
              ) -> tuple[dict[str, Any], dict[str, float]]:
    import time

    from curate.learners import make_learner
    from curate.pool.cluster import kmeans
    from curate.simulate.relabel import relabel_or_new
    from curate.strategies import PoolView, make_strategy

    names = list(parsed)
    cold = cold_start or budget_per_round
    clusters, _ = kmeans(vectors, min(10, len(vectors) // 20), random_state=0)
    groups = data.topics if data.topics is not None else clusters
    records = prompt_groups(data)
    tests = grouped_splits(groups, test_frac=test_frac, splits=splits)
    labels = [cold + r * budget_per_round for r in range(rounds + 1)]
    check_budget(labels[-1], min(int((~t).sum()) for t in tests))
    curves: dict[str, list[list[float]]] = {spec: [] for spec in names}
    reasked: dict[str, list[float]] = {spec: [] for spec, (name, _) in parsed.items() if name == RELABEL}
    seconds = dict.fromkeys(names, 0.0)
    full, longer = [], []
    runs = [(split, seed) for split in range(splits) for seed in seeds]
    for split, seed in (progress or no_progress)(runs, "simulating", len(runs)):
        test, pool = np.flatnonzero(tests[split]), np.flatnonzero(~tests[split])
        if seed == seeds[0]:
            fitted = make_learner(learner).fit(differences[pool], data.labels[pool])
            full.append(np.mean((fitted.predict(differences[test]).p > 0.5) == data.labels[test]))
            longer.append(longer_accuracy(data, test))
        start = np.random.default_rng([seed, split]).choice(len(pool), cold, replace=False)
        answers = Oracle(data, pool, oracle, np.random.default_rng([seed, split, 2]))
        for spec, (name, options) in parsed.items():
            began = time.perf_counter()
            strategy = None if name == RELABEL else make_strategy(name, **options)
            rng = np.random.default_rng([seed, split, 1])
            asked, for_a = np.zeros(len(pool), dtype=np.int64), np.zeros(len(pool), dtype=np.int64)
            answers.ask(start, asked, for_a)
            curve = []
            for r in range(rounds + 1):
                seen = asked > 0
                model = make_learner(learner).fit(differences[pool][seen], for_a[seen] / asked[seen],
                                                  weight=asked[seen])
                curve.append(float(np.mean((model.predict(differences[test]).p > 0.5) == data.labels[test])))
                if r == rounds:
                    break
                prediction = model.predict(differences[pool])
                if strategy is None:
                    chosen = relabel_or_new(prediction.p, asked, for_a, asked < answers.available, budget_per_round,
                                            rng)
                else:
                    view = PoolView(ids=np.arange(len(pool)), labelled=seen, excluded=np.zeros(len(pool), bool),
                                    vectors=vectors[pool], differences=differences[pool], scores=prediction.scores(),
                                    groups={"cluster": clusters[pool], "record": records[pool]})
                    chosen = strategy.select(view, budget_per_round, rng)
                answers.ask(chosen, asked, for_a)
            curves[spec].append(curve)
            if spec in reasked:
                reasked[spec].append(1 - float((asked > 0).sum()) / asked.sum())
            seconds[spec] += time.perf_counter() - began
    result = summarise(data, curves, labels, full_accuracy=float(np.mean(full)), n_pool=int(np.mean(
        [(~t).sum() for t in tests])), n_test=int(np.mean([t.sum() for t in tests])), seeds=list(seeds),
        splits=splits, budget_per_round=budget_per_round, rounds=rounds, learner=learner, stop_gain=stop_gain,
        target_share=target_share)
    result["oracle"] = oracle
    result["longer_accuracy"] = round(float(np.mean(longer)), 6)  # the trivial baseline, on the same test splits
    if features is not None:
        result["features"] = features
    for spec, shares in reasked.items():
        result["strategies"][spec]["reasked_share"] = round(float(np.mean(shares)), 6)
    return result, seconds


def summarise(data: SimulationData, curves: dict[str, list[list[float]]], labels: list[int], *, full_accuracy: float,
              n_pool: int, n_test: int, seeds: list[int], splits: int, budget_per_round: int, rounds: int,
              learner: str, stop_gain: float = STOP_GAIN, target_share: float = TARGET_SHARE) -> dict[str, Any]:
    """The contract's dict: curves (mean and std over split x seed runs), target, LER and its interval,
    and where each mean curve stopped paying (``stopping``: labels, or None while it still climbs)."""
    target = target_share * full_accuracy
    arrays = {name: np.array(runs) for name, runs in curves.items()}
    notes = []
    ler, ler_ci = {}, {}
    for name, runs in arrays.items():
        if name == "random":
            continue
        ler[name] = label_efficiency(labels, arrays["random"].mean(0), runs.mean(0), target)
        ler_ci[name] = bootstrap_interval(labels, arrays["random"], runs, target)
        if ler[name] is None:
            who = "random" if labels_to_reach(labels, arrays["random"].mean(0), target) is None else name
            notes.append(f"{who} never reaches the target {target:.3f} within {labels[-1]} labels, so LER for {name} "
                         "is null")
    if splits * len(seeds) < 5:
        notes.append(f"only {splits * len(seeds)} split x seed runs: do not trust the ratios (use >= 5 splits)")
    budgets = sorted({b for b in GAIN_BUDGETS if labels[0] <= b <= labels[-1]} | {labels[-1]})
    gain_at = {}
    for name, runs in arrays.items():
        if name == "random":
            continue
        gains = {b: gain_over_random(labels, arrays["random"], runs, b) for b in budgets}
        gain_at[name] = {str(b): {"mean": round(mean, 6), "ci": [round(x, 6) for x in ci]}
                         for b, (mean, ci) in gains.items()}
        beaten = [str(b) for b, (_, ci) in gains.items() if ci[1] < 0]
        if beaten:
            notes.append(f"random beats {name} at {', '.join(beaten)} labels (80% interval of the gain below 0)")
    reached = labels_to_reach(labels, arrays["random"].mean(0), target)
    if reached is not None and reached <= labels[1]:
        notes.append(f"random reaches the target by {reached:.0f} labels (the first round): the ratio is read where "
                     "the curves are flat; read the gains at fixed budgets, or simulate smaller rounds")
    stopping = {name: stopping_point(labels, runs.mean(0), gain=stop_gain) for name, runs in arrays.items()}
    for name, at in stopping.items():
        notes.append(f"{name}: more labels stopped paying at {at} labels (gain < {stop_gain:g} accuracy per 100 "
                     f"labels over {STOP_WINDOW} rounds)" if at is not None else
                     f"{name}: still gaining at {labels[-1]} labels; more labels may pay")
    return {
        "dataset": data.name, "n_pool": n_pool, "n_test": n_test, "seeds": seeds, "splits": splits,
        "budget_per_round": budget_per_round, "rounds": rounds, "learner": learner,
        "test_groups": "topic" if data.topics is not None else "cluster",
        "strategies": {name: {"labels": labels, "accuracy_mean": runs.mean(0).round(6).tolist(),
                              "accuracy_std": runs.std(0).round(6).tolist()} for name, runs in arrays.items()},
        "full_pool_accuracy": round(full_accuracy, 6), "target_share": target_share,
        "target_accuracy": round(target, 6),
        "ler": {k: None if v is None else round(v, 4) for k, v in ler.items()},
        "ler_ci": {k: None if v is None else [round(x, 4) for x in v] for k, v in ler_ci.items()},
        "gain_at": gain_at,
        "stopping": stopping, "stop_gain": stop_gain, "notes": notes}


def plot_curves(result: dict[str, Any], path: Path) -> Path:
    """Mean accuracy ± one standard error (over the split x seed runs) per strategy against labels; random
    dashed; LER in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["splits"] * len(result["seeds"])
    figure, axes = plt.subplots(figsize=(8, 5))
    for name, curve in result["strategies"].items():
        mean, error = np.array(curve["accuracy_mean"]), np.array(curve["accuracy_std"]) / np.sqrt(runs)
        ler = result["ler"].get(name)
        label = "random" if name == "random" else f"{name} (LER {'n/a' if ler is None else f'{ler:.2f}'})"
        line, = axes.plot(curve["labels"], mean, "--" if name == "random" else "-", label=label,
                          color="black" if name == "random" else None)
        axes.fill_between(curve["labels"], mean - error, mean + error, alpha=0.15, color=line.get_color())
    axes.axhline(result["target_accuracy"], color="grey", linewidth=0.8, linestyle=":",
                 label=f"target {result['target_accuracy']:.3f} ({result['target_share']:.0%} of full pool)")
    axes.set_xlabel("labels")
    axes.set_ylabel(f"accuracy on the frozen test (mean ± s.e. of {runs} runs)")
    name = result["dataset"].removesuffix(".gz").removesuffix(".jsonl")
    axes.set_title(f"{name}: {result['splits']} splits x {len(result['seeds'])} seeds, {result.get('oracle', 'gold')} "
                   f"oracle, {result['learner']} on {result.get('features', '?')}", fontsize=9)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
