"""One error family. The CLI prints ``str(err)`` as one line and exits with ``err.exit_code``."""

from __future__ import annotations


def reason(error: BaseException) -> str:
    """An exception's message as one line (its first), or its type's name where it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class CurateError(Exception):
    """A problem the user can fix (bad input, wrong option, missing project)."""

    exit_code = 1


class ConfigError(CurateError):
    """An invalid project or command configuration."""


class ProjectError(CurateError):
    """A missing, existing or unreadable project directory or database."""


class SchemaError(ProjectError):
    """The database was written by a schema this version cannot read."""


class InputError(CurateError):
    """A bad input file. ``problems`` lists every ``file:line: reason`` found."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class RefusedError(CurateError):
    """An annotation the server refuses: stale, assigned to someone else, or not allowed for this user."""
