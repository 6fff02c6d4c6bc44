"""``curate demo``: the whole loop on the bundled sample, step by step."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.commands.common import out, progress_bar


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
    from curate.commands.views import status_table
    from curate.demo import DemoSettings, run_demo

    settings = DemoSettings(budget=budget, train_steps=train_steps, model=model)
    out.print(f"[bold]curate demo[/]: a project in {directory} from the bundled sample (labels hidden; "
              f"{'you answer round 1 in the app' if interactive else 'simulated annotators answer from them'})")
    for step in run_demo(directory, settings=settings, interactive=interactive, progress=progress_bar):
        if step.name == "status":
            out.print(status_table(step.result))
        else:
            out.print(step.summary)
    out.print(f"next: open {directory / 'report.html'}; curate status --project {directory}")
