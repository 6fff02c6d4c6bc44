"""The CLI reference in markdown, generated from the typer app itself (``docs/cli.md`` and the README's
command table are this output; a test keeps them current): ``python -m curate.cli_reference``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

README_START, README_END = "<!-- cli-table:start -->", "<!-- cli-table:end -->"


def _commands() -> list[tuple[str, Any]]:
    """(full name, click command) for every command, groups' subcommands included, in the app's order."""
    import typer.main

    from curate.cli import app

    root = typer.main.get_command(app)
    found = []

    def walk(group: Any, prefix: str) -> None:
        for name, command in group.commands.items():
            if getattr(command, "hidden", False):
                continue
            if hasattr(command, "commands"):
                walk(command, f"{prefix}{name} ")
            else:
                found.append((f"{prefix}{name}", command))

    walk(root, "")
    return found


def _summary(command: Any) -> str:
    return (command.help or "").strip().split("\n\n")[0].replace("\n", " ")


def command_table() -> str:
    """One row per command: its name and what it does (the README's table)."""
    rows = [f"| [`curate {name}`](docs/cli.md#curate-{name.replace(' ', '-')}) | {_summary(c)} |"
            for name, c in _commands()]
    return "\n".join(["| command | what it does |", "|---|---|", *rows])


def cli_reference() -> str:
    """Every command with its usage, description, arguments and options (``docs/cli.md``)."""
    from curate.cli import app

    lines = ["# CLI reference", "", "Generated from the typer app by `python -m curate.cli_reference` "
             "(do not edit by hand). Every command takes `--help`; errors are one line and a non-zero exit code.",
             "", f"Global option: `curate --debug COMMAND` shows tracebacks. {(app.info.help or '').strip()}", ""]
    for name, command in _commands():
        context = command.context_class(command, info_name=f"curate {name}")
        lines += [f"## curate {name}", "", "```", _usage(name, command), "```", "", (command.help or "").strip(), ""]
        rows = []
        for param in command.get_params(context):
            if param.name == "help":
                continue
            record = param.get_help_record(context)
            if param.param_type_name == "argument":
                rows.append((_argument(param), getattr(param, "help", None) or "", ""))
            elif record is not None:
                flags, text = record
                default = ""
                if "[default:" in text:
                    text, _, default = text.partition("[default:")
                    default = default.rstrip("] ").strip()
                rows.append((flags, text.strip(), default))
        if rows:
            lines += ["| argument / option | meaning | default |", "|---|---|---|"]
            lines += [f"| `{_cell(flags)}` | {_cell(text)} | {_cell(default)} |" for flags, text, default in rows]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _argument(param: Any) -> str:
    name = param.name.upper() + ("..." if param.nargs == -1 else "")
    return name if param.required else f"[{name}]"


def _usage(name: str, command: Any) -> str:
    arguments = [_argument(p) for p in command.params if p.param_type_name == "argument"]
    return " ".join([f"curate {name}", "[OPTIONS]", *arguments])


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def update(readme: Path, reference: Path) -> None:
    """Rewrite ``reference`` and the table between the README's markers."""
    reference.write_text(cli_reference(), encoding="utf-8")
    body = readme.read_text(encoding="utf-8")
    start, end = body.index(README_START) + len(README_START), body.index(README_END)
    readme.write_text(body[:start] + "\n" + command_table() + "\n" + body[end:], encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")
    update(root / "README.md", root / "docs" / "cli.md")
