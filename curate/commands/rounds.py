"""``curate select``: choose the pairs worth an expert's minute, as a new round."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from curate.commands.common import JsonFlag, ProjectDir, out, print_json
from curate.errors import CurateError


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` strategy options; numbers become numbers."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CurateError(f"--option takes key=value, not '{pair}'")
        for kind in (int, float):
            try:
                options[key] = kind(value)
                break
            except ValueError:
                continue
        else:
            options[key] = value
    return options


def select(
    budget: Annotated[int, typer.Option("--budget", "-n", help="Pairs to choose.")],
    project_dir: ProjectDir = Path("."),
    strategy: Annotated[str | None, typer.Option(
        "--strategy", "-s", help="random, uncertainty, qbc, coreset, cluster, hybrid, model-change, token-entropy, "
                                 "reward-margin, rules (default: select.strategy in curate.toml; select.cold_start "
                                 "before any label).")
    ] = None,
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", help="A strategy option as key=value, e.g. measure=bald (repeatable).")] = None,
    random_frac: Annotated[float | None, typer.Option(
        "--random-frac", help="Share drawn at random as the random arm (default: select.random_frac, 0.1).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default: select.seed).")] = None,
    route: Annotated[str | None, typer.Option(
        "--route", help="rank | rewrite | auto: what experts do with the chosen pairs (default: route.mode).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Choose BUDGET pairs for experts as a new round (the first round also reserves the test and
    calibration slices) and write rounds/NNNN/manifest.json."""
    from curate.project import open_project
    from curate.rounds import select_round

    if route is not None and route not in ("rank", "rewrite", "auto"):
        raise CurateError(f"--route must be rank, rewrite or auto, not '{route}'")
    if random_frac is not None and not 0 <= random_frac <= 1:
        raise CurateError(f"--random-frac must be between 0 and 1, not {random_frac}")
    with open_project(project_dir) as project:
        result = select_round(project, budget=budget, strategy=strategy, options=parse_options(option or []),
                              random_frac=random_frac, seed=seed, route=route)
    if as_json:
        print_json(vars(result))
        return
    start = "cold start: " if result.cold_start else ""
    out.print(f"round {result.number}: {result.items} pairs by {start}{result.strategy} "
              f"(arms: {_pretty(result.arms)}; routes: {_pretty(result.routes)})")
    if result.reserved:
        out.print(f"reserved once, never selected or exported for training: {_pretty(result.reserved)}")
    for note in result.notes:
        out.print(f"note: {note}")
    out.print(f"manifest: {result.manifest}")


def _pretty(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in counts.items())
