"""Does curation pay for the model a team trains? A reward model trained on N curated pairs against one trained on N
random pairs, judged on held-out pairs.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/outcome.py [--data ukp,hh,pandalm] [--n 200,500]
        [--seeds 0,1,2] [--strategies random,cluster,bal-pm] [--test-pairs 400] [--max-length 256]
        [--device auto] [--out docs/outcome.md] [--work DIR]

For each data set of ../shared/data, each seed s (test split s: held-out topics for UKP, embedding clusters
otherwise, as ``curate simulate`` makes them; pairs with an empty completion left out) and each N, every strategy
chooses N training pairs from the split's pool as ``curate simulate`` does with the gold oracle: a random cold start
of 50, then rounds of 50, each chosen by the strategy from a committee fitted on the labels so far (on MiniLM
embedding features). The chosen pairs, with their gold labels, are ingested into a fresh project and ``curate train
reward-lora --with-imported`` trains the packaged SmolLM2-135M-Instruct on them (one epoch, the recipe's settings,
``--max-length``); the trained reward model then scores ``--test-pairs`` pairs of the split's test (drawn once per
split), and its pairwise accuracy is reported with the length baseline ("the longer completion wins") on the same
pairs. Each curated arm is compared with random on the same split and seed: the mean gain and an 80% bootstrap
interval over the seeds.

Budget: a smoke run (PandaLM, N = 60, 40 test pairs, max-length 128) took 150 s per run on 2 busy CPU cores, most
of it training; runs grow with N and the test pairs, so the default grid (3 data sets x 2 N x 3 seeds x 3
strategies: 54 runs) needs several hours on 2 cores, minutes on a GPU (``--device cuda``: training and scoring run
there; the choice of pairs stays on the CPU). Runs are kept under --work and reused, so an
interrupted benchmark continues. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = {"ukp": "ukp-convarg1-dev.jsonl.gz", "hh": "hh-rlhf-harmless-test-dev.jsonl.gz",
        "pandalm": "pandalm-testset-v1.jsonl.gz"}
COLD, ROUND = 50, 50


def choose(strategy: str, data, vectors: np.ndarray, differences: np.ndarray, pool: np.ndarray, n: int,
           seed: int) -> np.ndarray:
    """``n`` positions of ``pool`` as ``curate simulate`` acquires them with the gold oracle."""
    from curate.learners import make_learner
    from curate.pool.cluster import kmeans
    from curate.simulate.run import parse_strategy
    from curate.strategies import PoolView, make_strategy

    rng = np.random.default_rng([seed, 1])
    chosen = list(rng.choice(len(pool), min(COLD, n), replace=False))
    name, options = parse_strategy(strategy)
    picker = make_strategy(name, **options)
    clusters, _ = kmeans(vectors, min(10, len(vectors) // 20), random_state=0)
    while len(chosen) < n:
        labelled = np.zeros(len(pool), dtype=bool)
        labelled[chosen] = True
        model = make_learner("committee").fit(differences[pool][labelled], data.labels[pool][labelled])
        view = PoolView(ids=np.arange(len(pool)), labelled=labelled, excluded=np.zeros(len(pool), bool),
                        vectors=vectors[pool], differences=differences[pool],
                        scores=model.predict(differences[pool]).scores(), groups={"cluster": clusters[pool]})
        chosen += picker.select(view, min(ROUND, n - len(chosen)), rng).tolist()
    return pool[np.array(chosen)]


def preference_rows(data, positions: np.ndarray) -> list[dict]:
    """The pairs as preference rows (chosen, rejected) by their gold label."""
    rows = []
    for i in positions.tolist():
        won, lost = (data.a[i], data.b[i]) if data.labels[i] == 1 else (data.b[i], data.a[i])
        rows.append({"prompt": data.prompts[i].text, "chosen": won.text, "rejected": lost.text})
    return rows


def train_and_score(rows: list[dict], test_rows: list[dict], work: Path, max_length: int, seed: int,
                    device: str) -> float:
    """Train reward-lora on ``rows`` in a fresh project on ``device``; its pairwise accuracy on ``test_rows``."""
    import shutil

    from curate import ingest_files, init_project
    from curate.compute import Compute
    from curate.models import DEFAULT_POLICY
    from curate.rendering import Content, Conversation
    from curate.scores.lm import load_reward_model, resolve_scorer
    from curate.scores.reward import reward_scores
    from curate.train.training import plan_training, run_training

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with init_project(work / "project") as project:
        ingest_files(project, [work / "train.jsonl"])
        plan = plan_training(project, "reward-lora", with_imported=True, overrides=[
            f"model={DEFAULT_POLICY}", f"train.max_length={max_length}", f"train.seed={seed}",
            "train.eval_examples=0", "train.save_steps=100000", "train.logging_steps=100000"], device=device)
        version = run_training(project, plan)
        model, tokenizer = load_reward_model(resolve_scorer(version["name"], cache=project.root / "cache",
                                                            project=project), cache=project.root / "cache",
                                             compute=Compute.of(device))
    talks = [Conversation(Content(r["prompt"]), Content(r[side])) for r in test_rows for side in ("chosen", "rejected")]
    rewards = reward_scores(model, tokenizer, talks, max_length=max_length)[:, 0].reshape(-1, 2)
    return float(np.mean(rewards[:, 0] > rewards[:, 1]))


def interval(gains: list[float], seed: int = 0) -> list[float]:
    values = np.array(gains)
    means = values[np.random.default_rng(seed).integers(0, len(values), (1000, len(values)))].mean(1)
    return [float(np.percentile(means, 10)), float(np.percentile(means, 90))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=",".join(DATA))
    parser.add_argument("--n", default="200,500")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--strategies", default="random,cluster,bal-pm")
    parser.add_argument("--test-pairs", type=int, default=400)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--device", default="auto", help="where training and scoring run (auto: a GPU where torch "
                                                         "sees one)")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "curate" / "outcome")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "outcome.md")
    args = parser.parse_args()

    from curate.files import publish_text
    from curate.pool.cluster import kmeans
    from curate.simulate.run import default_cache, grouped_splits, pair_features, read_preferences

    strategies = [s for s in args.strategies.split(",") if s]
    if strategies[0] != "random":
        raise SystemExit("--strategies must start with random (every arm is compared with it)")
    results: dict[str, dict] = {}
    for key in args.data.split(","):
        data = read_preferences(args.shared / DATA[key])
        vectors, differences = pair_features(data, model="sentence-transformers/all-MiniLM-L6-v2",
                                             cache_root=default_cache(), features="embedding")
        clusters, _ = kmeans(vectors, min(10, len(vectors) // 20), random_state=0)
        groups = data.topics if data.topics is not None else clusters
        seeds = [int(s) for s in args.seeds.split(",")]
        tests = grouped_splits(groups, test_frac=0.2, splits=max(seeds) + 1)
        # a pair with an empty completion (PandaLM has a few) teaches a reward model nothing and cannot be ingested
        whole = np.array([bool(a.text) and bool(b.text) for a, b in zip(data.a, data.b, strict=True)])
        for seed in seeds:
            test, pool = np.flatnonzero(tests[seed] & whole), np.flatnonzero(~tests[seed] & whole)
            test = np.sort(np.random.default_rng([seed, 9]).choice(test, min(args.test_pairs, len(test)),
                                                                    replace=False))
            test_rows = preference_rows(data, test)
            length = float(np.mean([len(r["chosen"]) > len(r["rejected"]) for r in test_rows]))
            for n in (int(x) for x in args.n.split(",")):
                for strategy in strategies:
                    run = f"{key}-n{n}-s{seed}-{strategy}"
                    stored = args.work / f"{run}.json"
                    if stored.is_file():
                        results[run] = json.loads(stored.read_text())
                        continue
                    began = time.perf_counter()
                    picked = choose(strategy, data, vectors, differences, pool, n, seed)
                    accuracy = train_and_score(preference_rows(data, picked), test_rows, args.work / run,
                                               args.max_length, seed, args.device)
                    results[run] = {"data": key, "n": n, "seed": seed, "strategy": strategy, "accuracy": accuracy,
                                    "length_baseline": length, "test_pairs": len(test_rows),
                                    "seconds": round(time.perf_counter() - began, 1)}
                    stored.write_text(json.dumps(results[run]) + "\n")
                    print(f"{run}: accuracy {accuracy:.3f} (length {length:.3f}), "
                          f"{results[run]['seconds']:.0f} s", flush=True)
    publish_text(args.out, report(results, strategies, args))
    print(f"wrote {args.out}")


def report(results: dict[str, dict], strategies: list[str], args: argparse.Namespace) -> str:
    lines = ["# Outcome: does curation pay for the trained reward model?", "",
             f"Generated by `benchmarks/outcome.py --data {args.data} --n {args.n} --seeds {args.seeds} --strategies "
             f"{args.strategies} --test-pairs {args.test_pairs} --max-length {args.max_length}` (do not edit by "
             "hand; the script's docstring says how each run is made). Accuracy: the trained reward-lora model's "
             "pairwise accuracy on held-out test pairs (mean over seeds); gain: the curated arm's accuracy minus "
             "random's on the same split and seed, mean and 80% bootstrap interval over the seeds.", "",
             "| data | N | seeds | length baseline | " + " | ".join(strategies) + " | "
             + " | ".join(f"{s} − random" for s in strategies[1:]) + " |",
             "|---|---|---|---|" + "---|" * (2 * len(strategies) - 1)]
    cells: dict[tuple[str, int], dict[str, dict[int, dict]]] = {}
    for r in results.values():
        cells.setdefault((r["data"], r["n"]), {}).setdefault(r["strategy"], {})[r["seed"]] = r
    for (key, n), arms in cells.items():
        seeds = sorted(arms.get("random", {}))
        length = np.mean([arms["random"][s]["length_baseline"] for s in seeds]) if seeds else float("nan")
        row = [f"{np.mean([arms[s][x]['accuracy'] for x in arms[s]]):.3f}" if s in arms else "—" for s in strategies]
        for s in strategies[1:]:
            paired = [arms[s][x]["accuracy"] - arms["random"][x]["accuracy"] for x in seeds if x in arms.get(s, {})]
            if not paired:
                row.append("—")
                continue
            low, high = interval(paired)
            row.append(f"{np.mean(paired):+.3f} [{low:+.3f}, {high:+.3f}]")
        lines.append(f"| {key} | {n} | {len(seeds)} | {length:.3f} | " + " | ".join(row) + " |")
    lines += ["", "Curated beat random where a gain's interval lies above 0; random won where it lies below; "
              "otherwise the two are not told apart by these seeds."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
