"""``curate recipes``: the packaged training recipes, to list and to copy."""

from __future__ import annotations

from typing import Annotated

import typer

from curate.commands.common import JsonFlag, out, print_json

recipes_app = typer.Typer(no_args_is_help=True, help="Training recipes (YAML): list them, show one to copy and edit.")


@recipes_app.command("list")
def recipes_list(as_json: JsonFlag = False) -> None:
    """The packaged recipes: name, kind, model and what each trains."""
    from curate.recipe import load_recipe, packaged_recipes

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
    from curate.recipe import packaged_recipes

    recipes = packaged_recipes()
    if name not in recipes:
        raise ConfigError(f"no packaged recipe {name!r}: choose one of {', '.join(recipes)}")
    print(recipes[name], end="")  # plain text, so it can be redirected into a file as is
