"""``curate demo`` (the whole loop on the bundled sample) and ``curate report`` (the project's HTML report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from curate.commands.common import JsonFlag, ProjectDir, out, print_json, progress_bar


def report(project_dir: ProjectDir = Path("."),
           out_path: Annotated[Path | None, typer.Option("--out", help="Where to write the HTML page.",
                                                         show_default="report.html in the project")] = None,
           as_json: JsonFlag = False) -> None:
    """Write the project's report: where and why each round chose, the learning curve against the random arm,
    agreement, model versions and their test figures, what changed between rounds (one HTML file)."""
    from curate.project import open_project
    from curate.report import report_data, write_report

    with open_project(project_dir) as project:
        if as_json:
            print_json(report_data(project, progress=progress_bar))
            return
        path = write_report(project, out=out_path, progress=progress_bar)
    out.print(f"report: {path} (open it in a browser)")


def demo(directory: Annotated[Path, typer.Option("--dir", help="Where to create the demo project.")] =
         Path("demo-project"),
         interactive: Annotated[bool, typer.Option("--interactive", help="Answer round 1 yourself in the app "
                                                   "instead of simulated annotators.")] = False,
         model: Annotated[str | None, typer.Option("--model", help="Base model to train and sample (default: the "
                                                   "packaged SmolLM2-135M-Instruct).")] = None,
         budget: Annotated[int, typer.Option("--budget", help="Pairs per round.", min=10)] = 60,
         train_steps: Annotated[int, typer.Option("--train-steps", help="DPO-LoRA steps.", min=1)] = 4) -> None:
    """Run the whole loop on the bundled sample (UKPConvArg1, PandaLM), offline: select round 1, annotate it,
    measure agreement, export, train a DPO-LoRA adapter, generate, select round 2, write the report."""
    from curate.demo import DemoSettings, run_demo
    from curate.views import status_table

    settings = DemoSettings(budget=budget, train_steps=train_steps, model=model)
    out.print(f"[bold]curate demo[/]: a project in {directory} from the bundled sample (labels hidden; "
              f"{'you answer round 1 in the app' if interactive else 'simulated annotators answer from them'})")
    for step in run_demo(directory, settings=settings, interactive=interactive, progress=progress_bar):
        if step.name == "status":
            out.print(status_table(step.result))
        else:
            out.print(_line(step.name, step.result, directory))
    out.print(f"next: open {directory / 'report.html'}; curate status --project {directory}")


def _line(name: str, result: Any, directory: Path) -> str:
    """One line per demo step."""
    from curate.views import generate_line, train_line

    if name == "init":
        return f"init: project {result}"
    if name == "ingest":
        files = ", ".join(f"{Path(f.path).name} ({f.pairs} pairs)" for f in result.files)
        return f"ingest: {files}; their labels are held back as the simulated annotators' answer key"
    if name == "embed":
        return f"embed: {result.texts} texts with {result.model} ({result.computed} computed)"
    if name == "cluster":
        how = " (k by silhouette)" if "auto_k" in result.config else ""
        return (f"cluster: {sum(result.sizes.values())} {result.field}s into {result.k} clusters{how}; "
                f"curate cluster --show --project {directory}")
    if name == "dedup":
        return f"dedup: {len(result.groups)} near-duplicate groups, {result.marked} {result.field}s marked"
    if name == "map":
        return f"map: {result.html} (open it in a browser)"
    if name == "select":
        return (f"select: round {result.number} by {result.strategy}{' (cold start)' if result.cold_start else ''}: "
                f"{result.items} pairs, {result.arms.get('random', 0)} in the random arm, "
                f"{result.routes.get('rank', 0)} to rank, {result.routes.get('rewrite', 0)} to rewrite"
                + (f"; slices reserved: {result.reserved.get('test', 0)} test, "
                   f"{result.reserved.get('calibration', 0)} calibration" if result.reserved else ""))
    if name == "serve":
        return (f"serve: the app is at {result['url']}; log in as {result['user']} / {result['password']} and "
                f"judge the {result['items']} items of round 1 (Ctrl+C goes on with what you judged)")
    if name == "annotate":
        skipped = sum(result.skipped.values())
        votes = ", ".join(f"{k} {v}" for k, v in sorted(result.choices.items()))
        return (f"annotate: {len(result.annotators)} simulated annotators judged {result.judged} items ({votes})"
                + (f", passed on {skipped} ({'; '.join(result.skipped)})" if skipped else ""))
    if name == "agreement":
        return (f"agreement: {result['items_multi']} items judged by 2+; Fleiss κ "
                f"{result['fleiss_kappa']['value']:.3f}, Krippendorff α {result['krippendorff_alpha']['value']:.3f}")
    if name == "committee":
        return f"committee: {result.members} Bradley–Terry heads fitted on {result.labelled} labelled pairs"
    if name == "export":
        splits = ", ".join(f"{s} {info['rows']}" for s, info in result["splits"].items())
        return f"export: round {result['round']} as {result['format']} ({splits})"
    if name == "train":
        return train_line(result)
    if name == "generate":
        return generate_line(result)
    if name == "report":
        return f"report: {result}"
    return f"{name}: done"
