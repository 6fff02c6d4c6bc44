"""`curate agreement` and `curate adjudicate`: how far the people agree, and a lead's decisions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.commands.common import JsonFlag, ProjectDir, out, print_json
from curate.errors import CurateError


def agreement(project_dir: ProjectDir = Path("."),
              round_number: Annotated[int | None, typer.Option("--round", help="Only this round's items "
                                                               "(default: every pair judgment).")] = None,
              resamples: Annotated[int, typer.Option("--bootstrap", min=0, help="Resamples for the 95% "
                                                     "intervals (0: none).")] = 200,
              raters: Annotated[str | None, typer.Option("--raters", help="app (the project's people) or crowd "
                                                         "(imported votes); default: the people, unless they "
                                                         "have no overlapping judgments yet and a crowd has.")] = None,
              seed: Annotated[int, typer.Option("--seed", min=0)] = 0, as_json: JsonFlag = False) -> None:
    """Inter-annotator agreement: percent, Cohen's, Fleiss' kappa, Krippendorff's alpha, gold accuracy, and the
    people's labels against the imported ones (gold, data-set labels, an imported crowd) where both exist."""
    from curate.labels.agreement import agreement_report
    from curate.project import open_project

    with open_project(project_dir) as project:
        report = agreement_report(project, round_number=round_number, raters=raters, resamples=resamples,
                                  seed=seed)
    if as_json:
        print_json(report)
        return
    from curate.commands.views import agreement_table

    out.print(agreement_table(report))


def adjudicate(pair: Annotated[str | None, typer.Argument(help="Pair id (or a unique prefix of 6+ characters): "
                                                           "show it, or decide it with --choice.")] = None,
               choice: Annotated[str | None, typer.Option("--choice", help="a | b | tie | both_bad")] = None,
               note: Annotated[str | None, typer.Option("--note", help="Why (required to decide).")] = None,
               by: Annotated[str | None, typer.Option("--by", help="The deciding lead's user name.")] = None,
               round_number: Annotated[int | None, typer.Option("--round", help="Only this round's pairs.")] = None,
               limit: Annotated[int, typer.Option("--limit", min=1, help="Queue entries to print.")] = 20,
               project_dir: ProjectDir = Path("."), as_json: JsonFlag = False) -> None:
    """The adjudication queue (ties, weak majorities, majorities a confident committee contradicts); with PAIR,
    show one pair's votes, and with --choice --note --by, record a lead's audited decision."""
    from curate.labels.adjudication import adjudicate as decide
    from curate.labels.adjudication import adjudication_queue, as_dict, pair_detail
    from curate.project import open_project

    with open_project(project_dir) as project:
        if pair is None:
            if choice or note or by:
                raise CurateError("name the pair to decide: curate adjudicate PAIR --choice ... --note ... --by ...")
            queue = adjudication_queue(project, round_number=round_number)
            if as_json:
                print_json([as_dict(e) for e in queue])
                return
            _print_queue(queue, limit)
            return
        if choice is None:
            detail = pair_detail(project, pair)
            if as_json:
                print_json(detail)
                return
            _print_pair(detail)
            return
        if not by:
            raise CurateError("say which lead decides: --by NAME")
        label = decide(project, pair=pair, choice=choice, note=note or "", lead=by)
    if as_json:
        print_json(as_dict(label))
        return
    out.print(f"pair {label.pair_id}: final label [bold]{label.choice}[/] (adjudicated by {label.decided_by})")


def _print_queue(queue: list, limit: int) -> None:
    from rich.table import Table

    table = Table("pair", "reason", "committee P(A)", title=f"adjudication queue: {len(queue)} pairs",
                  title_justify="left")
    for entry in queue[:limit]:
        table.add_row(entry.pair_id[:12], entry.reason, "" if entry.committee_p is None else f"{entry.committee_p:.2f}")
    out.print(table)
    if len(queue) > limit:
        out.print(f"... {len(queue) - limit} more (--limit, --json)")
    if queue:
        out.print("decide one: curate adjudicate PAIR --choice a|b|tie|both_bad --note '...' --by LEAD")


def _print_pair(detail: dict) -> None:
    from rich.markup import escape

    out.print(f"[bold]pair {detail['pair_id']}[/]\n[bold]prompt[/]: {escape(detail['prompt'])}\n"
              f"[bold]A[/]: {escape(detail['a'])}\n[bold]B[/]: {escape(detail['b'])}")
    for j in detail["judgments"]:
        reason = f" ({escape(j['reason'])})" if j["reason"] else ""
        out.print(f"  {escape(j['name'] or '-')} ({j['source']}): {j['choice']}{reason}")
    final = detail["final"]
    out.print(f"final label: {final['choice'] or 'none'} ({final['how']})" if final else "final label: none")
