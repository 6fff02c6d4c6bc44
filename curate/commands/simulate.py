"""``curate simulate``: learning curves against random and the label-efficiency ratio, on labelled data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from curate.commands.common import out, progress_bar
from curate.errors import CurateError


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CurateError(f"{what} takes whole numbers separated by commas, not '{text}'") from None
    if not values:
        raise CurateError(f"{what} needs at least one value")
    return values


def _points(gain: dict) -> str:
    """A gain in accuracy points, with its interval."""
    low, high = gain["ci"]
    return f"{100 * gain['mean']:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"


def simulate(
    data: Annotated[Path, typer.Argument(help="A labelled preference file any `curate ingest` layout reads.")],
    mapping: Annotated[str | None, typer.Option("--map", help="Column roles, as for ingest.")] = None,
    label_values: Annotated[str | None, typer.Option("--label-values", help="As for ingest.")] = None,
    strategies: Annotated[str, typer.Option(
        "--strategies", help="Comma-separated: random, uncertainty, qbc, coreset, cluster, hybrid, model-change, "
                             "bal-pm, pair-choice, relabel (--oracle votes); options after a colon, "
                             "e.g. qbc:measure=bald. Random always runs.")
    ] = "random,uncertainty,qbc,coreset,cluster,hybrid",
    budget_per_round: Annotated[int, typer.Option("--budget-per-round", min=1)] = 50,
    rounds: Annotated[int, typer.Option("--rounds", min=1)] = 10,
    seeds: Annotated[str, typer.Option("--seeds", help="Comma-separated seeds.")] = "0,1,2",
    splits: Annotated[int, typer.Option("--splits", min=1, help="Frozen test splits (use >= 5).")] = 5,
    test_frac: Annotated[float, typer.Option("--test-frac")] = 0.2,
    oracle: Annotated[str, typer.Option("--oracle", help="gold: the file's gold label (else its vote majority); "
                                                         "votes: one annotator's vote per request, in a random order "
                                                         "(relabel may ask about a pair again).")] = "gold",
    learner: Annotated[str, typer.Option("--learner", help="committee | laplace | mlp")] = "committee",
    features: Annotated[str, typer.Option("--features", help="What the learner sees of a completion: lm (hidden "
                                                             "states of --lm-model, computed once and cached; the "
                                                             "most accurate) or embedding (--model; fast), either "
                                                             "with +length (two length features).")
                        ] = "lm",
    model: Annotated[str, typer.Option("--model", help="Embedding model (pair vectors for diversity, and the "
                                                       "features with --features embedding).")
                     ] = "sentence-transformers/all-MiniLM-L6-v2",
    lm_model: Annotated[str | None, typer.Option("--lm-model", help="Causal LM for --features lm (default: the "
                                                                    "packaged SmolLM2-135M-Instruct).")] = None,
    layer: Annotated[int | None, typer.Option("--layer", min=1, help="Decoder layer of --lm-model whose states "
                                                                     "are the features (default 20).")] = None,
    stop_gain: Annotated[float, typer.Option("--stop-gain", min=1e-9, help="Stopping rule: more labels stopped "
                                                                           "paying once the mean gain over three "
                                                                           "rounds is below this accuracy per 100 "
                                                                           "labels.")] = 0.005,
    target_share: Annotated[float, typer.Option("--target-share", help="The target of the label-efficiency ratio, "
                                                                       "as a share of the full-pool accuracy (0.5 "
                                                                       "to 1): lower it where curves flatten below "
                                                                       "0.98.")] = 0.98,
    cache: Annotated[Path | None, typer.Option("--cache", help="Where embeddings and LM states are cached "
                                                               "(default: ~/.cache/curate).")] = None,
    device: Annotated[str, typer.Option("--device", help="Where embeddings and LM states are computed: auto (a GPU "
                                                         "where torch sees one), cpu, cuda, cuda:N or mps.")] = "auto",
    engine: Annotated[str, typer.Option("--engine", help="local (this process) or ray (the Ray cluster at RAY_ADDRESS, "
                                                         "else a Ray on this machine) for embeddings and LM states."
                                                         )] = "local",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the result (DESIGN.md contract) here.")
                        ] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write the learning curves here (PNG).")] = None,
) -> None:
    """Simulate rounds on labelled data: does each strategy beat random, and by how many labels?"""
    from curate.files import publish_text
    from curate.simulate.run import plot_curves, run_simulation

    names = [s.strip() for s in strategies.split(",") if s.strip()]
    preferences, result, seconds = run_simulation(
        data, mapping=mapping, label_values=label_values, strategies=names, budget_per_round=budget_per_round,
        rounds=rounds, seeds=_ints(seeds, "--seeds"), splits=splits, test_frac=test_frac, oracle=oracle,
        learner=learner, features=features, model=model, lm_model=lm_model, layer=layer, stop_gain=stop_gain,
        target_share=target_share, cache=cache, device=device, engine=engine, progress=progress_bar)
    if json_out:
        publish_text(json_out, json.dumps(result, indent=2) + "\n")
    if plot:
        plot_curves(result, plot)
    from rich.table import Table

    table = Table(title=f"{result['dataset']}: {len(preferences.labels)} labelled pairs, test grouped by "
                        f"{result['test_groups']}; full-pool accuracy {result['full_pool_accuracy']:.3f} (the longer "
                        f"completion: {result['longer_accuracy']:.3f}), target {result['target_accuracy']:.3f}",
                  title_justify="left")
    ratio = f"LER@{100 * result['target_share']:g}"
    for column in ("strategy", f"accuracy @{result['strategies']['random']['labels'][-1]}", ratio, "80% interval",
                   "stops at", "seconds"):
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for name, curve in result["strategies"].items():
        ler, ci, stop = result["ler"].get(name), result["ler_ci"].get(name), result["stopping"][name]
        table.add_row(name, f"{curve['accuracy_mean'][-1]:.3f}", "—" if name == "random" else
                      ("n/a" if ler is None else f"{ler:.2f}"),
                      "" if ci is None else f"[{ci[0]:.2f}, {ci[1]:.2f}]",
                      "still gaining" if stop is None else f"{stop} labels", f"{seconds[name]:.1f}")
    out.print(table)
    budgets = list(next(iter(result["gain_at"].values()), {}))
    if budgets:
        gains = Table(title="accuracy points gained over random at a budget (mean [80% interval of the paired runs])",
                      title_justify="left")
        for column in ("strategy", *(f"@{b} labels" for b in budgets)):
            gains.add_column(column, justify="left" if column == "strategy" else "right")
        for name, at in result["gain_at"].items():
            gains.add_row(name, *(_points(at[b]) for b in budgets))
        out.print(gains)
    for note in result["notes"]:
        if "stopped paying" not in note and "still gaining" not in note:  # the table shows those
            out.print(f"note: {note}")
