"""Learning curves and label-efficiency ratios on the three data sets of ../shared/data, written to
docs/benchmarks.md (tables) and docs/benchmarks/ (each run's JSON, the DESIGN.md contract, and its PNG).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/simulate_report.py [--jobs 2] [--data ../shared/data] [--reuse]

Every run is ``curate simulate``'s own code (5 topic/cluster-grouped test splits x 3 seeds, a cold start
of 50 and 10 rounds of 50): the default learner and features on every data set with the gold oracle and,
where the data has annotator votes, the votes oracle (with the relabel policy); then each other learner
and feature kind on the gold oracle, for what it adds to full-pool accuracy and to the ratios; and UKP
with 20 rounds, whose pool allows a longer curve. Features are cached (~/.cache/curate), so a second
run only simulates; ``--reuse`` keeps runs already written. Wall time per run is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = {"UKP dev": "ukp-convarg1-dev.jsonl.gz", "hh dev": "hh-rlhf-harmless-test-dev.jsonl.gz",
        "PandaLM": "pandalm-testset-v1.jsonl.gz"}
STRATEGIES = ["random", "uncertainty", "qbc", "coreset", "cluster", "hybrid", "bal-pm"]
COMPARED = ["random", "uncertainty", "qbc:measure=bald", "cluster", "hybrid", "bal-pm"]
PAIR_CHOICE = {"UKP dev", "PandaLM"}  # where pairs share their prompt (hh-rlhf gives each prompt one pair)
DEFAULT = ("committee", "lm")
OTHER_SCRIPTS = "<!-- from here on: "  # benchmarks.md: the sections other scripts (outcome.py) write, kept here
MLP = ("mlp", "lm+length")  # the nonlinear deep ensemble: its fits cost ~20x the committee's, so fewer strategies
BUDGETS = (100, 200, 500)  # labels at which the learners' random arms are compared
MLP_COMPARED = ["random", "uncertainty", "qbc:measure=bald", "bal-pm"]
LEARNERS = (DEFAULT, ("committee", "lm+length"), ("committee", "embedding"), ("laplace", "lm"), MLP)


@dataclass(frozen=True)
class Run:
    data: str  # a key of DATA
    oracle: str
    learner: str
    features: str
    strategies: tuple[str, ...]
    rounds: int = 10

    @property
    def name(self) -> str:
        longer = "" if self.rounds == 10 else f"-r{self.rounds}"
        return f"{DATA[self.data].split('-')[0]}-{self.oracle}-{self.learner}-{self.features}{longer}"


def runs() -> list[Run]:
    out = []
    for data in DATA:
        oracles = ["gold"] if data == "hh dev" else ["gold", "votes"]  # hh-rlhf has one label per pair, no votes
        pairs = ("pair-choice",) if data in PAIR_CHOICE else ()
        for oracle in oracles:
            extra = ("relabel",) if oracle == "votes" else ()
            out.append(Run(data, oracle, *DEFAULT, (*STRATEGIES, *pairs, *extra)))
    for data in DATA:
        for learner, features in LEARNERS[1:]:
            compared = tuple(MLP_COMPARED if (learner, features) == MLP else COMPARED)
            out.append(Run(data, "gold", learner, features, compared))
            if (learner, features) == MLP and data != "hh dev":  # the new learner with the votes oracle too
                out.append(Run(data, "votes", learner, features, compared))
    # UKP's pool (~6,700 pairs) allows a curve twice as long: the ratios need one that reaches the target
    long = (*STRATEGIES, "cluster:within=uncertainty")
    out += [Run("UKP dev", "gold", *DEFAULT, long, rounds=20),
            Run("UKP dev", "votes", *DEFAULT, (*long, "relabel"), rounds=20)]
    return out


def simulate_one(run: Run, data_dir: Path, out: Path, reuse: bool) -> tuple[Run, dict, dict, float]:
    from curate.simulate.run import features_label, pair_features, plot_curves, read_preferences, simulate

    stored, timing = out / f"{run.name}.json", out / f"{run.name}.seconds.json"
    if reuse and stored.is_file() and timing.is_file():  # the simulation is deterministic: same inputs, same JSON
        seconds = json.loads(timing.read_text())
        return run, json.loads(stored.read_text()), seconds["strategies"], seconds["wall"]
    began = time.perf_counter()
    data = read_preferences(data_dir / DATA[run.data])
    vectors, differences = pair_features(data, model="sentence-transformers/all-MiniLM-L6-v2",
                                         cache_root=Path.home() / ".cache" / "curate", features=run.features)
    result, seconds = simulate(data, vectors, differences, strategies=list(run.strategies), oracle=run.oracle,
                               learner=run.learner, seeds=(0, 1, 2), splits=5, budget_per_round=50,
                               rounds=run.rounds, features=features_label(run.features))
    stored.write_text(json.dumps(result, indent=2) + "\n")
    plot_curves(result, out / f"{run.name}.png")
    wall = time.perf_counter() - began
    timing.write_text(json.dumps({"wall": wall, "strategies": seconds}) + "\n")
    return run, result, seconds, wall


def ratio(result: dict, name: str) -> str:
    ler, ci = result["ler"].get(name), result["ler_ci"].get(name)
    if ler is None:
        return "never reaches" if labels_needed(result, name) is None else "n/a (random never reaches)"
    return f"{ler:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{ler:.2f} [interval n/a]"


def gain(result: dict, name: str, budget: int) -> str:
    found = result.get("gain_at", {}).get(name, {}).get(str(budget))
    if found is None:
        return "—"
    low, high = (100 * x for x in found["ci"])
    return f"{100 * found['mean']:+.1f} [{low:+.1f}, {high:+.1f}]"


def labels_needed(result: dict, name: str) -> float | None:
    from curate.simulate.efficiency import labels_to_reach

    curve = result["strategies"][name]
    return labels_to_reach(curve["labels"], curve["accuracy_mean"], result["target_accuracy"])


def report(done: list[tuple[Run, dict, dict, float]]) -> str:
    from curate.simulate.run import GAIN_BUDGETS

    lines = ["# Benchmarks: does selection beat random?", "",
             "Generated by `benchmarks/simulate_report.py` (do not edit by hand). Every figure is from "
             "`curate simulate`: 5 frozen test splits (held-out topics for UKP, embedding clusters otherwise) x "
             "3 seeds, a random cold start of 50 labels shared by every strategy, then 10 rounds of 50. "
             "LER@98 = labels random needs to reach 98% of the full-pool accuracy ÷ labels the strategy needs, "
             "with its 80% bootstrap interval over the 15 split x seed runs. The votes oracle answers each request "
             "with one real annotator's vote (UKP: 5 crowd workers per pair; PandaLM: 3 annotators); accuracy is "
             "always against gold. `relabel` may spend a request on another vote for a pair already asked. "
             "\"interval n/a\": more than a fifth of the bootstrap resamples never reach the target (it sits where "
             "the curves flatten). Plot bands: ±1 standard error over the 15 runs (the JSON's `accuracy_std` is the "
             "standard deviation, mostly the spread between test splits). Below each ratio table, the accuracy "
             "gained over random at 200 and 500 labels, paired by split and seed: it still reads where the ratio "
             "cannot (random never reaching the target, or reaching it in the first round). `bal-pm` and "
             "`pair-choice` are the strategies from the 2024-26 literature (README, strategy table); pair choice "
             "runs where pairs share their prompt (UKP: a topic's arguments; PandaLM: several systems' answers "
             "to an instruction), not on hh-rlhf (one pair per prompt).", ""]
    by_key = {(r.data, r.oracle, r.learner, r.features, r.rounds): (r, res, sec, wall) for r, res, sec, wall in done}
    lines += ["## Learners: full-pool accuracy (gold labels, held-out test)", "",
              "| learner | features | " + " | ".join(DATA) + " |", "|---|---|" + "---|" * len(DATA)]
    for learner, features in LEARNERS:
        cells = [f"{by_key[(d, 'gold', learner, features, 10)][1]['full_pool_accuracy']:.3f}"
                 if (d, "gold", learner, features, 10) in by_key else "—" for d in DATA]
        lines.append(f"| {learner} | {features} | " + " | ".join(cells) + " |")
    longer = [f"{by_key[(d, 'gold', *DEFAULT, 10)][1]['longer_accuracy']:.3f}" if (d, "gold", *DEFAULT, 10) in by_key
              else "—" for d in DATA]
    lines += ["| the longer completion wins | — | " + " | ".join(longer) + " |", "",
              "`lm` = SmolLM2-135M-Instruct's hidden states after decoder layer 20 of 30, averaged over the "
              "completion's tokens in its prompt's context, standardised; `embedding` = all-MiniLM-L6-v2; "
              "`+length` adds log characters and log words of each completion (A minus B). `committee`: 8 "
              "Bradley-Terry heads on bootstrap resamples; `laplace`: one Bayesian Bradley-Terry head; `mlp`: a deep "
              "ensemble of 8 one-hidden-layer networks, each margin h(d) - h(-d) (`curate.learners.mlp`), run with "
              "fewer strategies since a fit costs about 20 times the committee's. The length baseline "
              "is scored on the same test splits (a tie counts half).", "",
              "## Learners at a budget: accuracy with random labels (gold)", "",
              "The random arm's mean accuracy at 100, 200 and 500 labels (± the standard deviation over the 15 "
              "split x seed runs, mostly the spread between test splits; every learner sees the same splits, "
              "seeds and labels, and the JSON keeps means, so no paired interval): how much a learner makes of "
              "few labels, beside what selection adds to it (the gains tables below).", "",
              "| learner | features | " + " | ".join(f"{d} @{b}" for d in DATA for b in BUDGETS) + " |",
              "|---|---|" + "---|" * (len(DATA) * len(BUDGETS))]
    for learner, features in LEARNERS:
        cells = []
        for d in DATA:
            found = by_key.get((d, "gold", learner, features, 10))
            curve = found[1]["strategies"]["random"] if found else None
            for budget in BUDGETS:
                at = curve["labels"].index(budget) if curve and budget in curve["labels"] else None
                cells.append("—" if at is None else
                             f"{curve['accuracy_mean'][at]:.3f} ± {curve['accuracy_std'][at]:.3f}")
        lines.append(f"| {learner} | {features} | " + " | ".join(cells) + " |")
    lines.append("")
    for (learner, features) in LEARNERS:
        title = "default learner" if (learner, features) == DEFAULT else "compared learner"
        lines += [f"## LER@98, {title}: {learner} on {features} features", ""]
        keys = [k for k in by_key if k[2:4] == (learner, features)]
        names = list(dict.fromkeys(n for k in keys for n in by_key[k][1]["strategies"] if n != "random"))
        lines += ["| data | oracle | labels | full pool | target | random reaches it at | " + " | ".join(names) + " |",
                  "|---|---|---|---|---|---|" + "---|" * len(names)]
        for key in keys:
            result = by_key[key][1]
            reach = labels_needed(result, "random")
            cells = [ratio(result, n) if n in result["strategies"] else "—" for n in names]
            lines.append(f"| {key[0]} | {key[1]} | {result['strategies']['random']['labels'][-1]} | "
                         f"{result['full_pool_accuracy']:.3f} | "
                         f"{result['target_accuracy']:.3f} | {'never' if reach is None else f'{reach:.0f}'} | "
                         + " | ".join(cells) + " |")
        lines += ["", f"Accuracy points gained over random ({learner} on {features}), mean [80% interval of the paired "
                  "split x seed runs]:", "", "| data | oracle | labels | " + " | ".join(names) + " |",
                  "|---|---|---|" + "---|" * len(names)]
        for key in keys:
            if key[4] != 10:  # a longer run's first 10 rounds are the 10-round run's (same seeds, same picks)
                continue
            result = by_key[key][1]
            for budget in GAIN_BUDGETS:
                cells = [gain(result, n, budget) for n in names]
                lines.append(f"| {key[0]} | {key[1]} | {budget} | " + " | ".join(cells) + " |")
        lines.append("")
    stopped = list(dict.fromkeys(n for k, v in by_key.items() if k[2:4] == DEFAULT for n in v[1]["stopping"]))
    lines += ["## Where more labels stopped paying (default learner)", "",
              "The stopping rule: the first round whose mean gain over the last three rounds is below 0.5 "
              "accuracy points per 100 labels.", "", "| data | oracle | labels | " + " | ".join(stopped) + " |",
              "|---|---|---|" + "---|" * len(stopped)]
    for key, (_, result, _, _) in by_key.items():
        if key[2:4] != DEFAULT:
            continue
        cells = [("still gaining" if result["stopping"][n] is None else str(result["stopping"][n]))
                 if n in result["stopping"] else "—" for n in stopped]
        lines.append(f"| {key[0]} | {key[1]} | {result['strategies']['random']['labels'][-1]} | "
                     + " | ".join(cells) + " |")
    lines += ["", "## Curves", ""]
    for run, _, _, _ in done:
        lines += [f"### {run.data}, {run.oracle} oracle, {run.learner} on {run.features}, {run.rounds} rounds", "",
                  f"![{run.name}](benchmarks/{run.name}.png)", ""]
    lines += ["## Wall time (2 shared cores, one process per run, features cached)", "",
              "| run | seconds | seconds per strategy |", "|---|---|---|"]
    for run, _, seconds, wall in done:  # runs reused from an interrupted report may lack their timing
        per = ", ".join(f"{n} {s:.0f}" for n, s in seconds.items()) or "—"
        lines.append(f"| {run.name} | {'—' if wall is None else f'{wall:.0f}'} | {per} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--reuse", action="store_true", help="load runs whose JSON and timing are already written")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    figures = args.out / "benchmarks"
    figures.mkdir(parents=True, exist_ok=True)
    todo = runs()
    # features first, one data set at a time, so parallel runs never compute the same LM states twice
    for name in DATA:
        simulate_features(args.data / DATA[name])
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:  # the longest runs first, the report in order
        futures = {run: pool.submit(simulate_one, run, args.data, figures, args.reuse)
                   for run in sorted(todo, key=lambda r: -r.rounds)}
        for future in as_completed(futures.values()):
            run, _, _, wall = future.result()
            print(f"{run.name}: {'reused' if wall is None else f'{wall:.0f} s'}", flush=True)
        done = [futures[run].result() for run in todo]
    from curate.files import publish_text

    page = args.out / "benchmarks.md"
    others = page.read_text().partition(OTHER_SCRIPTS) if page.is_file() else ("", "", "")
    publish_text(page, report(done) + "".join(others[1:]))  # the sections other scripts wrote, as they were
    print(f"wrote {args.out / 'benchmarks.md'} and {len(done)} runs under {figures}")


def simulate_features(path: Path) -> None:
    from curate.simulate.run import pair_features, read_preferences

    data = read_preferences(path)
    for features in ("embedding", "lm"):
        pair_features(data, model="sentence-transformers/all-MiniLM-L6-v2",
                      cache_root=Path.home() / ".cache" / "curate", features=features)


if __name__ == "__main__":
    main()
