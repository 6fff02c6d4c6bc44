"""``curate serve`` and ``curate user``: the annotation app and its accounts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from curate.commands.common import JsonFlag, ProjectDir, out, print_json
from curate.errors import CurateError

PASSWORD_ENV = "CURATE_PASSWORD"
user_app = typer.Typer(no_args_is_help=True, help="App accounts: add, list, unlock, disable, enable, remove.")


def serve(project_dir: ProjectDir = Path("."),
          host: Annotated[str, typer.Option("--host", help="Address to bind; 0.0.0.0 exposes the app to the "
                                            "network (put it behind HTTPS).")] = "127.0.0.1",
          port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 7860) -> None:
    """Serve the annotation app (pairwise, rank and rewrite views) on the project's open rounds."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from curate.annotate.users import list_users
    from curate.apps.annotate import launch
    from curate.project import open_project

    with open_project(project_dir) as project:
        if not list_users(project.store):
            raise CurateError("no app users yet: add one with `curate user add NAME --role lead`")
        out.print(f"serving {project.root} on http://{host}:{port} (Ctrl+C stops)")
        launch(project, host=host, port=port, block=True)


@user_app.command("add")
def user_add(name: Annotated[str, typer.Argument(help="Login name.")],
             role: Annotated[str, typer.Option("--role", help="annotator | lead (leads review flagged items).")
                             ] = "annotator",
             reset: Annotated[bool, typer.Option("--reset", help="Set a new password (and role) for an existing "
                                                 "user; their open sessions end.")] = False,
             project_dir: ProjectDir = Path(".")) -> None:
    """Add an app user. The password is read from $CURATE_PASSWORD or asked for (never an argument)."""
    from curate.annotate.users import add_user
    from curate.project import open_project

    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        password = typer.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)
    with open_project(project_dir) as project:
        user = add_user(project.store, name, role=role, password=password, reset=reset)
    out.print(f"{'updated' if reset else 'added'} user [bold]{user.name}[/] ({user.role})")


@user_app.command("list")
def user_list(project_dir: ProjectDir = Path("."), as_json: JsonFlag = False) -> None:
    """The app's users, their roles and whether they are locked out."""
    from rich.table import Table

    from curate.annotate.users import list_users
    from curate.project import open_project

    with open_project(project_dir) as project:
        users = list_users(project.store)
    if as_json:
        print_json(users)
        return
    table = Table("user", "role", "status", "locked", "created")
    for u in users:
        table.add_row(str(u["name"]), str(u["role"]), str(u["status"]), "yes" if u["locked"] else "",
                      str(u["created"]))
    out.print(table)


@user_app.command("unlock")
def user_unlock(name: Annotated[str, typer.Argument()], project_dir: ProjectDir = Path(".")) -> None:
    """Lift a lock-out after too many wrong passwords."""
    _change_account(project_dir, name, "unlock_user", f"unlocked {name}")


@user_app.command("disable")
def user_disable(name: Annotated[str, typer.Argument()], project_dir: ProjectDir = Path(".")) -> None:
    """Refuse a user's logins and end their open sessions at once (curate user enable undoes it)."""
    _change_account(project_dir, name, "disable_user", f"disabled {name}; their open sessions are refused from "
                    "their next call")


@user_app.command("enable")
def user_enable(name: Annotated[str, typer.Argument()], project_dir: ProjectDir = Path(".")) -> None:
    """Let a disabled user log in again."""
    _change_account(project_dir, name, "enable_user", f"enabled {name}")


@user_app.command("remove")
def user_remove(name: Annotated[str, typer.Argument()], project_dir: ProjectDir = Path(".")) -> None:
    """Remove a user's account for good: their password is deleted and their sessions end. The judgments,
    rewrites and decisions they gave stay, under their name (which cannot be given to a new account)."""
    _change_account(project_dir, name, "remove_user", f"removed {name}; their judgments stay in the project")


def _change_account(project_dir: Path, name: str, change: str, done: str) -> None:
    """Apply ``curate.annotate.users.<change>`` to account ``name`` and say ``done``."""
    from curate.annotate import users
    from curate.project import open_project

    with open_project(project_dir) as project:
        getattr(users, change)(project.store, name)
    out.print(done)
