"""``curate recipes`` (the packaged training recipes, to list and to copy) and ``curate train``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.commands.common import DeviceOption, JsonFlag, ProjectDir, out, print_json

recipes_app = typer.Typer(no_args_is_help=True, help="Training recipes (YAML): list them, show one to copy and edit.")


@recipes_app.command("list")
def recipes_list(as_json: JsonFlag = False) -> None:
    """The packaged recipes: name, kind, model and what each trains."""
    from curate.train.recipe import load_recipe, packaged_recipes

    rows = []
    for name in packaged_recipes():
        recipe, _ = load_recipe(name)
        rows.append({"name": name, "kind": recipe.kind, "model": recipe.model, "description": recipe.description})
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table("recipe", "kind", "model", "description")
    for row in rows:
        table.add_row(row["name"], row["kind"], row["model"], row["description"])
    out.print(table)
    out.print("copy one to edit: curate recipes show dpo-lora > my-dpo.yaml")


@recipes_app.command("show")
def recipes_show(name: Annotated[str, typer.Argument(help="A packaged recipe (curate recipes list).")]) -> None:
    """Print a packaged recipe's YAML, to copy and edit."""
    from curate.errors import ConfigError
    from curate.train.recipe import packaged_recipes

    recipes = packaged_recipes()
    if name not in recipes:
        raise ConfigError(f"no packaged recipe {name!r}: choose one of {', '.join(recipes)}")
    print(recipes[name], end="")  # plain text, so it can be redirected into a file as is


def train(recipe: Annotated[str, typer.Argument(help="A packaged recipe (curate recipes list) or a YAML file.")],
          round_number: Annotated[int | None, typer.Option("--round", help="Train on this round's export "
                                                           "(default: every labelled example).")] = None,
          data: Annotated[Path | None, typer.Option("--data", help="A .jsonl dataset instead of the store's "
                                                    "export (curate export --format KIND).")] = None,
          overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a recipe key: "
                                                              "train.learning_rate=1e-4, lora.r=8, model=PATH.")
                               ] = None,
          dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan (recipe, model, data) and stop.")
                             ] = False,
          warm_start: Annotated[bool, typer.Option("--warm-start", help="Continue from the previous round's "
                                                   "adapter of this kind.")] = False,
          resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its last "
                                               "checkpoint.")] = False,
          with_imported: Annotated[bool, typer.Option("--with-imported", help="Also train on pairs labelled only by "
                                                      "the imported data (as curate export --with-imported; not "
                                                      "with --round).")
                                   ] = False,
          num_processes: Annotated[int, typer.Option(
              "--num-processes", min=1, help="Train with this many processes under accelerate launch (DDP): one per "
                                             "GPU, or CPU processes on gloo with --device cpu.")] = 1,
          device: DeviceOption = None, project_dir: ProjectDir = Path("."), as_json: JsonFlag = False) -> None:
    """Fine-tune with a recipe (TRL + PEFT LoRA), save the adapter under models/, evaluate it on the frozen test
    slice and register the model version."""
    from curate.commands.common import progress_bar
    from curate.project import open_project
    from curate.train.launch import check_processes, run_launched
    from curate.train.training import plan_training, run_training, version_summary

    with open_project(project_dir) as project:
        check_processes(num_processes, project.config.compute.resolve(device).device)
        plan = plan_training(project, recipe, round_number=round_number, data=data, overrides=overrides or [],
                             warm_start=warm_start, resume=resume, dry_run=dry_run, with_imported=with_imported,
                             device=device)
        if dry_run:
            shown = {"name": plan.name, "recipe": plan.recipe.as_dict(), "source": plan.source, "base": plan.base,
                     "parent": plan.parent, "data": plan.data, "output": str(plan.output), "round": plan.round,
                     "device": plan.device, "processes": num_processes}
            if as_json:
                print_json(shown)
                return
            out.print(f"would train [bold]{plan.name}[/] ({plan.recipe.kind}, {plan.source}) on {plan.base}, on "
                      f"{plan.device}" + (f" with {num_processes} processes" if num_processes > 1 else "")
                      + (f", warm-starting from {plan.parent}" if plan.parent else ""))
            for split, info in plan.data.items():
                out.print(f"  {split}: {info['rows']} examples, sha256 {info['sha256'][:12]}")
            out.print(f"  trainer: {plan.recipe.train}\n  lora: {plan.recipe.lora}\n  output: {plan.output}")
            return
        if num_processes > 1:
            version = run_launched(project, plan, processes=num_processes, resume=resume, progress=progress_bar)
        else:
            version = run_training(project, plan, resume=resume, progress=progress_bar)
    if as_json:
        print_json(version)
        return
    out.print(version_summary(version))
