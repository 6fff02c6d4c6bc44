"""Does curation pay for the model a team trains? A reward model trained on N curated pairs against one trained on N
random pairs, judged on held-out pairs.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/outcome.py [--data ukp,hh,pandalm] [--n 200,500,full]
        [--seeds 0,1,2,3,4] [--strategies random,cluster,bal-pm,uncertainty] [--features embedding+length]
        [--test-pairs 400] [--max-length 1024] [--device auto] [--choose-only | --report-only] [--work DIR]

For each data set of ../shared/data, each seed s (test split s: held-out topics for UKP, embedding clusters
otherwise, as ``curate simulate`` makes them; pairs with an empty completion left out) and each N, every strategy
chooses N training pairs from the split's pool as ``curate simulate`` does with the gold oracle: a random cold start
of 50, then rounds of 50, each chosen by the strategy from a committee fitted on the labels so far (on --features of
MiniLM embeddings). N = ``full`` trains on the whole pool, and the committee fitted on it is scored on the same test
pairs (the probe beside the fine-tuned model). The chosen pairs, with their gold labels, are ingested into a fresh
project and ``curate train reward-lora --with-imported`` trains the packaged SmolLM2-135M-Instruct on them (one
epoch, the recipe's settings, ``--max-length``); the trained reward model then scores ``--test-pairs`` pairs of the
split's test (drawn once per split), and its pairwise accuracy is reported with the length baseline ("the longer
completion wins") on the same pairs. Each curated arm is compared with random on the same split and seed: the mean
gain and an 80% bootstrap interval over the seeds. The report replaces the outcome section of docs/benchmarks.md;
every finished run is kept in docs/benchmarks/outcome-runs.jsonl (and not made again).

Budget: a run is a training, so this wants a GPU. On one H200 (bf16), with 19 processes sharing it, a run took
30-85 s at N = 200, 65-155 s at N = 500 and 70-250 s on a PandaLM or hh pool (600-920 pairs); UKP's pool (about
7,000 pairs) did not finish within 330 s. On 2 CPU cores a run at N = 60 took 120 s. Choosing the pairs needs only
the CPU and the embedding model, so a GPU machine without curate's packages can run it: here,
``--choose-only --work W`` writes every arm's pairs under W; carry W, the data files, the packaged GGUF and the wheels
the machine lacks (trl, datasets, transformers, peft, gguf, SQLAlchemy, ...), and run there, one process per data
set, N and a few seeds (runs are reused, so the processes share W): ``benchmarks/outcome.py --device cuda --work W
--shared DATA --data hh --n 200 --seeds 0,1,2``; then ``--report-only --work W``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SECTION = "<!-- from here on: benchmarks/outcome.py -->"  # docs/benchmarks.md: simulate_report.py writes above
DATA = {"ukp": "ukp-convarg1-dev.jsonl.gz", "hh": "hh-rlhf-harmless-test-dev.jsonl.gz",
        "pandalm": "pandalm-testset-v1.jsonl.gz"}
COLD, ROUND = 50, 50


def choose(strategy: str, data, vectors: np.ndarray, clusters: np.ndarray, differences: np.ndarray,
           pool: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` positions of ``pool`` as ``curate simulate`` acquires them with the gold oracle."""
    from curate.learners import make_learner
    from curate.simulate.run import parse_strategy
    from curate.strategies import PoolView, make_strategy

    rng = np.random.default_rng([seed, 1])
    chosen = list(rng.choice(len(pool), min(COLD, n), replace=False))
    name, options = parse_strategy(strategy)
    picker = make_strategy(name, **options)
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
                    device: str) -> tuple[float, int]:
    """Train reward-lora on ``rows`` in a fresh project on ``device``: its pairwise accuracy on ``test_rows``, and
    how many of ``rows`` it trained on (the reward trainer leaves out pairs longer than ``max_length``)."""
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
        # runs share the packaged model, dequantised once (curate.models writes it whole, whoever is first)
        models = project.root / "cache" / "models"
        (work.parent / "models").mkdir(exist_ok=True)
        models.symlink_to((work.parent / "models").resolve(), target_is_directory=True)
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
    return float(np.mean(rewards[:, 0] > rewards[:, 1])), int(version["examples"])


def shown(path: Path) -> Path:
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def made(results: dict[str, dict]) -> str:
    """What the runs were made with: their features, max-length and device."""
    return "; ".join(", ".join(sorted({str(r.get(k)) for r in results.values()})) for k in ("features", "max_length",
                                                                                            "device"))


def interval(gains: list[float], seed: int = 0) -> list[float]:
    values = np.array(gains)
    means = values[np.random.default_rng(seed).integers(0, len(values), (1000, len(values)))].mean(1)
    return [float(np.percentile(means, 10)), float(np.percentile(means, 90))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=",".join(DATA))
    parser.add_argument("--n", default="200,500,full", help="training pairs per arm; 'full': the split's whole pool "
                                                            "(random only: the fine-tuned model's ceiling)")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--strategies", default="random,cluster,bal-pm,uncertainty")
    parser.add_argument("--features", default="embedding+length", help="what the choosing committee is fitted on")
    parser.add_argument("--test-pairs", type=int, default=400)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--device", default="auto", help="where training and scoring run (auto: a GPU where torch "
                                                         "sees one)")
    parser.add_argument("--choose-only", action="store_true", help="store the chosen pairs under --work and train "
                                                                   "nothing (choose on one machine, train on another)")
    parser.add_argument("--report-only", action="store_true", help="write the report from the runs stored under "
                                                                   "--work; choose and train nothing")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "curate" / "outcome")
    parser.add_argument("--runs", type=Path, default=REPO / "docs" / "benchmarks" / "outcome-runs.jsonl",
                        help="every finished run, one JSON line each: runs there are not made again, and each "
                             "run finished under --work is added")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md",
                        help=f"the report replaces what follows {SECTION} there")
    args = parser.parse_args()

    from curate.files import publish_text
    from curate.simulate.run import read_preferences

    strategies = [s for s in args.strategies.split(",") if s]
    if strategies[0] != "random":
        raise SystemExit("--strategies must start with random (every arm is compared with it)")
    sizes = [x for x in args.n.split(",") if x]
    seeds = [int(s) for s in args.seeds.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    results = {name(r): r for r in finished(args)}
    for key in args.data.split(","):
        data, split = None, None
        for seed in seeds:
            for n in sizes:
                for strategy in strategies if n != "full" else ["random"]:
                    run = f"{key}-n{n}-s{seed}-{strategy}"
                    stored, chosen = args.work / f"{run}.json", args.work / f"{run}.pairs.json"
                    if run in results or args.report_only:
                        continue
                    began = time.perf_counter()
                    data = data or read_preferences(args.shared / DATA[key])
                    if not chosen.is_file():
                        split = split or Split(data, features=args.features, splits=max(seeds) + 1,
                                               test_pairs=args.test_pairs)
                        publish_text(chosen, json.dumps(split.choose(strategy, n, seed)) + "\n")
                    if args.choose_only:
                        continue
                    pairs = json.loads(chosen.read_text())
                    test_rows = preference_rows(data, np.array(pairs["test"]))
                    accuracy, trained = train_and_score(preference_rows(data, np.array(pairs["train"])), test_rows,
                                               args.work / run, args.max_length, seed, args.device)
                    results[run] = {"data": key, "n": n, "seed": seed, "strategy": strategy, "accuracy": accuracy,
                                    "length_baseline": float(np.mean([len(r["chosen"]) > len(r["rejected"])
                                                                      for r in test_rows])),
                                    "probe_accuracy": pairs.get("probe_accuracy"), "train_pairs": len(pairs["train"]),
                                    "trained_pairs": trained, "features": pairs["features"],
                                    "max_length": args.max_length, "device": where(args.device),
                                    "test_pairs": len(test_rows), "seconds": round(time.perf_counter() - began, 1)}
                    publish_text(stored, json.dumps(results[run]) + "\n")
                    print(f"{run}: accuracy {accuracy:.3f} ({results[run]['seconds']:.0f} s)", flush=True)
    if not args.choose_only:
        runs = sorted(finished(args), key=name)  # with those other processes finished under --work meanwhile
        publish_text(args.runs, "".join(json.dumps(r) + "\n" for r in runs))
        before = args.out.read_text().split(SECTION)[0] if args.out.is_file() else ""
        publish_text(args.out, f"{before}{SECTION}\n\n{report({name(r): r for r in runs}, strategies, args)}")
        print(f"wrote {args.out} ({len(runs)} runs in {args.runs})")


def where(device: str) -> str:
    """The device a run trained on, in words."""
    import torch

    from curate.compute import Compute

    resolved = Compute.of(device).device
    return f"{resolved} ({torch.cuda.get_device_name(resolved)})" if resolved.startswith("cuda") else resolved


def name(run: dict) -> str:
    return f"{run['data']}-n{run['n']}-s{run['seed']}-{run['strategy']}"


def finished(args: argparse.Namespace) -> list[dict]:
    """The runs of --runs and those finished under --work (these win: they are newer)."""
    runs = {}
    if args.runs.is_file():
        runs = {name(r): r for r in map(json.loads, args.runs.read_text().splitlines())}
    for path in args.work.glob("*.json"):
        if not path.name.endswith(".pairs.json"):
            run = json.loads(path.read_text())
            runs[name(run)] = run
    return list(runs.values())


class Split:
    """A data set's features and test splits, as ``curate simulate`` makes them: held-out topics for UKP,
    embedding clusters otherwise; pairs with an empty completion (PandaLM has a few: they teach a reward model
    nothing and cannot be ingested) are left out of both sides."""

    def __init__(self, data, *, features: str, splits: int, test_pairs: int) -> None:
        from curate.pool.cluster import kmeans
        from curate.simulate.run import default_cache, grouped_splits, pair_features

        self.data, self.features = data, features
        self.vectors, self.differences = pair_features(data, model="sentence-transformers/all-MiniLM-L6-v2",
                                                       cache_root=default_cache(), features=features)
        self.clusters, _ = kmeans(self.vectors, min(10, len(self.vectors) // 20), random_state=0)
        groups = data.topics if data.topics is not None else self.clusters
        whole = np.array([bool(a.text) and bool(b.text) for a, b in zip(data.a, data.b, strict=True)])
        self.tests, self.pools = [], []
        for seed, test in enumerate(grouped_splits(groups, test_frac=0.2, splits=splits)):
            held = np.flatnonzero(test & whole)
            self.tests.append(np.sort(np.random.default_rng([seed, 9]).choice(held, min(test_pairs, len(held)),
                                                                               replace=False)))
            self.pools.append(np.flatnonzero(~test & whole))

    def choose(self, strategy: str, n: str, seed: int) -> dict:
        """Training and test positions of one arm; the whole pool's also scored by the probe (the committee on
        the same features), beside which the fine-tuned model's ceiling is read."""
        pool, test = self.pools[seed], self.tests[seed]
        out = {"features": self.features, "test": test.tolist()}
        if n == "full":
            from curate.learners import make_learner

            probe = make_learner("committee").fit(self.differences[pool], self.data.labels[pool])
            out["probe_accuracy"] = float(np.mean((probe.predict(self.differences[test]).p > 0.5)
                                                  == (self.data.labels[test] == 1)))
            return out | {"train": pool.tolist()}
        return out | {"train": choose(strategy, self.data, self.vectors, self.clusters, self.differences, pool,
                                      int(n), seed).tolist()}


def report(results: dict[str, dict], strategies: list[str], args: argparse.Namespace) -> str:
    lines = ["## Outcome: does curation pay for the trained reward model?", "",
             f"Generated by `benchmarks/outcome.py --n {args.n} --seeds {args.seeds} --strategies {args.strategies} "
             f"--features {args.features} --test-pairs {args.test_pairs} --max-length {args.max_length}` from the "
             f"runs (made with {made(results)}) in `{shown(args.runs)}` (the "
             "script's docstring says how each run is made, and how to run it on a GPU machine). Accuracy: the "
             "trained reward-lora model's pairwise accuracy on held-out test pairs, mean over the seeds (test "
             "splits) run; gain: a curated arm's accuracy minus random's on the same split and seed, mean, 80% "
             "bootstrap interval and (in brackets) how many seeds are paired.", "",
             "| data | N | seeds | length baseline | " + " | ".join(strategies) + " | "
             + " | ".join(f"{s} − random" for s in strategies[1:]) + " |",
             "|---|---|---|---|" + "---|" * (2 * len(strategies) - 1)]
    cells: dict[tuple[str, str], dict[str, dict[int, dict]]] = {}
    for r in sorted(results.values(), key=lambda r: (list(DATA).index(r["data"]), str(r["n"]))):
        cells.setdefault((r["data"], str(r["n"])), {}).setdefault(r["strategy"], {})[r["seed"]] = r
    above, below = [], []
    for (key, n), arms in cells.items():
        if n == "full":
            continue
        seeds = sorted(arms.get("random", {}))
        length = np.mean([arms["random"][s]["length_baseline"] for s in seeds]) if seeds else float("nan")
        row = [f"{np.mean([arms[s][x]['accuracy'] for x in arms[s]]):.3f}" if s in arms else "—" for s in strategies]
        for s in strategies[1:]:
            paired = [arms[s][x]["accuracy"] - arms["random"][x]["accuracy"] for x in seeds if x in arms.get(s, {})]
            if not paired:
                row.append("—")
                continue
            low, high = interval(paired)
            row.append(f"{np.mean(paired):+.3f} [{low:+.3f}, {high:+.3f}] ({len(paired)})")
            if len(paired) >= 3 and (low > 0 or high < 0):
                (above if low > 0 else below).append(f"{s} on {key} at N = {n} ({np.mean(paired):+.3f})")
        lines.append(f"| {key} | {n} | {len(seeds)} | {length:.3f} | " + " | ".join(row) + " |")
    trained = [r for r in results.values() if r.get("trained_pairs") is not None]
    left_out = sum(r["train_pairs"] - r["trained_pairs"] for r in trained) / max(1, sum(r["train_pairs"]
                                                                                        for r in trained))
    lines += ["", "Curated beat random (80% interval above 0, at least 3 seeds paired): "
              f"{'; '.join(above) or 'nowhere'}. Random beat curated (interval below 0): "
              f"{'; '.join(below) or 'nowhere'}. Elsewhere the two are not "
              f"told apart by these seeds. The reward trainer leaves out pairs longer than --max-length tokens: "
              f"{left_out:.1%} of the chosen pairs were.", "",
              "### The whole pool: the fine-tuned reward model against the probe", "",
              f"Each split's whole pool (every pair outside its test) trains reward-lora once; the probe is the "
              f"committee (curate's default learner) fitted on the same pairs' `{args.features}` features and "
              "scored on the same test pairs. Mean over seeds, with the range; the difference with its 80% interval.",
              "", "| data | seeds | training pairs | length baseline | probe | reward-lora | reward-lora − probe |",
              "|---|---|---|---|---|---|---|"]
    for (key, n), arms in cells.items():
        runs = list(arms.get("random", {}).values()) if n == "full" else []
        if not runs:
            continue
        lora, probe = np.array([r["accuracy"] for r in runs]), np.array([r["probe_accuracy"] for r in runs])
        low, high = interval((lora - probe).tolist())
        lines.append(f"| {key} | {len(runs)} | {np.mean([r['train_pairs'] for r in runs]):.0f} | "
                     f"{np.mean([r['length_baseline'] for r in runs]):.3f} | {probe.mean():.3f} "
                     f"[{probe.min():.3f}–{probe.max():.3f}] | {lora.mean():.3f} [{lora.min():.3f}–{lora.max():.3f}] | "
                     f"{np.mean(lora - probe):+.3f} [{low:+.3f}, {high:+.3f}] |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
