"""``curate select``: choose the pairs worth an expert's minute, as a new round."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.commands.common import JsonFlag, ProjectDir, out, print_json
from curate.errors import CurateError
from curate.options import key_values
from curate.vocabulary import RouteMode


def parse_quota(text: str) -> tuple[str, float, float]:
    """``BY=MIN:MAX`` (shares of the round) as (grouping, min, max)."""
    by, sep, shares = text.partition("=")
    low, colon, high = shares.partition(":")
    try:
        if not (sep and colon and by):
            raise ValueError
        return by, float(low), float(high)
    except ValueError:
        raise CurateError(f"--quota takes BY=MIN:MAX, e.g. cluster=0.02:0.3, not '{text}'") from None


def select(
    budget: Annotated[int | None, typer.Option("--budget", "-n", help="Pairs to choose (not with --stream).")
                      ] = None,
    project_dir: ProjectDir = Path("."),
    strategy: Annotated[str | None, typer.Option(
        "--strategy", "-s", help="random, uncertainty, qbc, coreset, cluster, hybrid, model-change, bal-pm, "
                                 "pair-choice, token-entropy, reward-margin, rules (default: select.strategy in "
                                 "curate.toml; select.cold_start before any label).")
    ] = None,
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", help="A strategy option as key=value, e.g. measure=bald (repeatable).")] = None,
    random_frac: Annotated[float | None, typer.Option(
        "--random-frac", help="Share drawn at random as the random arm (default: select.random_frac, 0.1).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Random seed (default: select.seed).")] = None,
    route: Annotated[str | None, typer.Option(
        "--route", help="rank | rewrite | ranking | auto: what experts do with the chosen pairs: rank the pair, "
                        "rewrite one side, order all (3-8) completions of its prompt, or by the [route] rules "
                        "(default: route.mode).")
    ] = None,
    quota: Annotated[list[str] | None, typer.Option(
        "--quota", help="Share of the strategy's part per group as BY=MIN:MAX, e.g. cluster=0.02:0.3 or topic=0:0.1 "
                        "(groupings: cluster, and the metadata keys ingest kept, e.g. subset or language).")
    ] = None,
    where: Annotated[list[str] | None, typer.Option(
        "--where", help="Only pairs whose metadata matches are candidates of this round (both arms): KEY=VALUE[,VALUE"
                        "...] or KEY!=VALUE[,...], compared as text, e.g. language=en,de or subset!=code (repeatable; "
                        "all must hold). The frozen slices are still reserved from the whole pool.")] = None,
    stream: Annotated[bool, typer.Option(
        "--stream", help="Decide record by record on JSONL pairs read from stdin; one JSON decision per line out.")
    ] = False,
    rate: Annotated[float, typer.Option("--rate", help="With --stream: the share to select (the threshold is "
                                                       "calibrated on the pool).")] = 0.1,
    mapping: Annotated[str | None, typer.Option("--map", help="With --stream: column roles, as for ingest.")] = None,
    label_values: Annotated[str | None, typer.Option("--label-values", help="With --stream: as for ingest.")
                            ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Choose pairs for experts as a new round (manifest in rounds/NNNN/), or --stream decisions on new pairs."""
    from rich.markup import escape

    from curate.project import open_project
    from curate.select.rounds import select_round

    if stream:
        _stream(project_dir, strategy or "uncertainty", rate, mapping, label_values, seed or 0)
        return
    if budget is None:
        raise CurateError("--budget is needed (or --stream to decide on records from stdin)")
    if len(quota or []) > 1:
        raise CurateError("one --quota per round (quotas on two groupings at once could not both be kept)")

    if route is not None and route not in tuple(RouteMode):
        raise CurateError(f"--route must be one of {', '.join(RouteMode)}, not '{route}'")
    if random_frac is not None and not 0 <= random_frac <= 1:
        raise CurateError(f"--random-frac must be between 0 and 1, not {random_frac}")
    with open_project(project_dir) as project:
        options = key_values(option or [], error=lambda part: f"--option takes key=value, not '{part}'")
        result = select_round(project, budget=budget, strategy=strategy, options=options,
                              random_frac=random_frac, seed=seed, route=route,
                              quota=parse_quota(quota[0]) if quota else None, where=where)
    if as_json:
        print_json(vars(result))
        return
    start = "cold start: " if result.cold_start else ""
    out.print(f"round {result.number}: {result.items} pairs by {start}{result.strategy} "
              f"(arms: {_pretty(result.arms)}; routes: {_pretty(result.routes)})")
    if result.reserved:
        out.print(f"reserved once, never selected or exported for training: {_pretty(result.reserved)}")
    for note in result.notes:
        out.print(f"note: {escape(note)}")
    out.print(f"manifest: {result.manifest}")


def _stream(project_dir: Path, strategy: str, rate: float, mapping: str | None, label_values: str | None,
            seed: int) -> None:
    import json
    import sys

    from curate.commands.common import err
    from curate.project import open_project
    from curate.select.stream import stream_decisions

    selected = seen = 0
    with open_project(project_dir) as project:
        for decision in stream_decisions(project, sys.stdin, strategy=strategy, rate=rate, mapping=mapping,
                                         label_values=label_values, seed=seed):
            seen += 1
            selected += decision["selected"]
            sys.stdout.write(json.dumps(decision) + "\n")
            sys.stdout.flush()
    err.print(f"stream: {selected} of {seen} records selected ({selected / max(seen, 1):.1%}; rate {rate:.1%})")


def _pretty(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in counts.items())


round_app = typer.Typer(no_args_is_help=True, help="Close a round (the app stops handing it out), reopen it, or "
                                                   "repair its manifest.")


@round_app.command("close")
def round_close(number: Annotated[int, typer.Argument(help="Round number.")], project_dir: ProjectDir = Path(".")
                ) -> None:
    """Close round NUMBER: the app hands out none of its items and refuses submits for them."""
    _set_round(project_dir, number, "closed")


@round_app.command("reopen")
def round_reopen(number: Annotated[int, typer.Argument(help="Round number.")], project_dir: ProjectDir = Path(".")
                 ) -> None:
    """Open round NUMBER again."""
    _set_round(project_dir, number, "open")


@round_app.command("repair")
def round_repair(number: Annotated[int | None, typer.Argument(help="Round number (default: every round whose "
                                                               "manifest is missing or wrong).")] = None,
                 project_dir: ProjectDir = Path("."), as_json: JsonFlag = False) -> None:
    """Rewrite rounds/NNNN/manifest.json from the store, byte for byte as select wrote it (after a kill, or an
    edit); curate status lists the rounds that need it."""
    from curate.project import open_project
    from curate.select.rounds import manifest_path, repair_manifests

    with open_project(project_dir) as project:
        repaired = repair_manifests(project, number=number)
        paths = {n: manifest_path(project, n) for n in repaired}
    if as_json:
        print_json([{"round": n, "was": why, "manifest": str(paths[n])} for n, why in repaired.items()])
        return
    if not repaired:
        out.print("every round's manifest matches the store")
    for n, why in repaired.items():
        out.print(f"round {n}: {paths[n]} rewritten from the store ({'it matched already' if why == 'ok' else why})")


def _set_round(project_dir: Path, number: int, status: str) -> None:
    from curate.project import open_project
    from curate.select.rounds import set_round_status

    with open_project(project_dir) as project:
        set_round_status(project, number, status)
    out.print(f"round {number} {status}")
