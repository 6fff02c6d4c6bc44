"""The annotation app's request handlers: one method per action, each a thin call into ``curate.annotate``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gradio as gr  # imported only by the app

from curate.annotate import stats
from curate.annotate.diff import diff_html
from curate.annotate.instructions import current_instructions
from curate.annotate.queue import MAX_RANKED, Shown, next_item
from curate.annotate.submit import Saved, skip, submit, undo
from curate.annotate.users import SessionEnded, User, get_user
from curate.apps.sessions import Sessions
from curate.errors import CurateError
from curate.project import Project

Acknowledged = tuple[dict[str, Any], str, str]  # (result, message, the assignment Undo would take back)

_VIEW_TITLES = {"pair": "Which answer is better?", "rank": "Order these answers",
                "rewrite": "Improve this answer"}


class Handlers:
    """What the annotation app does for the logged-in user (from ``gr.Request.username``) in ``project``."""

    def __init__(self, project: Project, sessions: Sessions) -> None:
        self.project = project
        self.sessions = sessions
        self.store = project.store
        self.rule = project.config.annotate
        self.instructions_file = project.root / self.rule.instructions
        self._seen_instructions: dict[tuple[int, int], int] = {}

    def user_of(self, request: gr.Request) -> User:
        """The session's user; a session of an older generation (or none) is refused, and ended."""
        name = getattr(request, "username", None)
        try:
            return get_user(self.store, name, generation=getattr(name, "generation", -1))
        except SessionEnded as err:
            self.sessions.end(name or "")
            raise gr.Error(str(err)) from None
        except CurateError as err:
            raise gr.Error(str(err)) from None

    def instruction_version(self) -> int:
        """The instructions' version, checked again whenever the file changes."""
        try:
            stat = self.instructions_file.stat()
            key = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            key = (0, 0)
        if key not in self._seen_instructions:
            self._seen_instructions.clear()
            self._seen_instructions[key] = current_instructions(self.store, self.instructions_file)[0]
        return self._seen_instructions[key]

    # A handler's docstring is its endpoint's description in the API page: only /item has one.
    def serve_next(self, request: gr.Request) -> list[Any]:  # every output of the item area, for the next item
        user = self.user_of(request)
        return self.item_updates(user, next_item(self.store, user, self.rule,
                                                 instruction_version=self.instruction_version()))

    def api_item(self, request: gr.Request) -> dict[str, Any] | None:
        """The item to do now, as JSON (for API callers; the page uses /next)."""
        user = self.user_of(request)
        shown = next_item(self.store, user, self.rule, instruction_version=self.instruction_version())
        return shown.as_dict() if shown else None

    def item_updates(self, user: User, shown: Shown | None) -> list[Any]:
        """Every output of the item area, for ``shown`` (None: nothing left to do)."""
        view = shown.view if shown else None
        texts = shown.completions if shown else []
        ranked = texts if view == "rank" else []
        return [
            shown.as_dict() if shown else None,
            str(shown.assignment) if shown else "", shown.token if shown else "",
            stats.progress_line(self.store, user, self.rule),
            gr.update(value=_prompt_md(shown) if shown else "", visible=shown is not None),
            gr.update(visible=view == "pair"),
            texts[0] if view == "pair" else "", texts[1] if view == "pair" else "",
            gr.update(value=shown.suggestion if shown else None),
            gr.update(visible=view == "rank"),
            *[gr.update(value=f"**{i + 1}.** {ranked[i]}" if i < len(ranked) else "", visible=i < len(ranked))
              for i in range(MAX_RANKED)],
            *[gr.update(value=None, maximum=max(len(ranked), 1), visible=i < len(ranked)) for i in range(MAX_RANKED)],
            gr.update(visible=view == "rewrite"),
            texts[0] if view == "rewrite" else "", texts[0] if view == "rewrite" else "", "",
            None, "",  # confidence, reason: cleared for the next item
            gr.update(visible=shown is None),
        ]

    def on_pair(self, assignment: str, token: str, choice: str | None, confidence: Any, reason: str,
                request: gr.Request) -> Acknowledged:
        return self._run(request, lambda u: submit(self.store, u, assignment=_int(assignment), token=token,
                                                   choice=choice, confidence=_whole(confidence), reason=reason),
                         "saved")

    def on_rank(self, assignment: str, token: str, confidence: Any, reason: str, request: gr.Request,
                *ranks: Any) -> Acknowledged:
        return self._run(request, lambda u: submit(
            self.store, u, assignment=_int(assignment), token=token, confidence=_whole(confidence), reason=reason,
            ranks=[_whole(r) for r in ranks if r not in (None, "")]), "ranking saved")

    def on_rewrite(self, assignment: str, token: str, text: str, confidence: Any, reason: str,
                   request: gr.Request) -> Acknowledged:
        return self._run(request, lambda u: submit(self.store, u, assignment=_int(assignment), token=token,
                                                   text=text, confidence=_whole(confidence), reason=reason),
                         "rewrite saved")

    def on_skip(self, assignment: str, token: str, reason: str, request: gr.Request) -> Acknowledged:
        return self._run(request, lambda u: skip(self.store, u, assignment=_int(assignment), token=token,
                                                 reason=reason), "skipped")

    def on_flag(self, assignment: str, token: str, reason: str, request: gr.Request) -> Acknowledged:
        return self._run(request, lambda u: skip(self.store, u, assignment=_int(assignment), token=token,
                                                 reason=reason, flag=True), "flagged for the leads")

    def on_undo(self, last: str, request: gr.Request) -> Acknowledged:
        if not last:
            raise gr.Error("nothing to undo here (each judgment can be undone once, right after it)")
        return self._run(request, lambda u: undo(self.store, u, self.rule, assignment=_int(last)),
                         "last judgment taken back: judge it again")

    def on_stats(self, request: gr.Request) -> tuple[Any, Any, Any, Any]:  # line, table, lead tabs shown
        user = self.user_of(request)
        rows = stats.annotator_stats(self.store, only=None if user.role == "lead" else user.id)
        return (stats.progress_line(self.store, user, self.rule), _table(rows),
                gr.update(visible=user.role == "lead"), gr.update(visible=user.role == "lead"))

    def on_flagged(self, request: gr.Request) -> Any:
        user = self.user_of(request)
        if user.role != "lead":
            raise gr.Error("only leads can review flagged items")
        return _table(stats.flagged_items(self.store))

    def on_instructions(self, request: gr.Request) -> str:
        self.user_of(request)
        number, body = current_instructions(self.store, self.instructions_file)
        return f"{body}\n\n*Instructions version {number}.*"

    def on_edit(self, old: str, new: str, request: gr.Request) -> str:
        """The rewrite's diff against the original, as HTML."""
        self.user_of(request)
        return diff_html(old or "", new or "")

    def _run(self, request: gr.Request, action: Callable[[User], Any], done: str) -> Acknowledged:
        """Do ``action`` for the logged-in user: (result, message, the assignment Undo would take back).
        A refusal is an error the page (or API caller) shows."""
        user = self.user_of(request)
        try:
            saved = action(user)
        except CurateError as err:
            raise gr.Error(str(err)) from None
        if isinstance(saved, Saved):
            note = "already saved (a double submit stores nothing new)" if saved.duplicate else done
            return ({"judgment": saved.judgment, "duplicate": saved.duplicate, "assignment": saved.assignment},
                    note, str(saved.assignment))
        return {"assignment": saved}, done, ""


def _prompt_md(shown: Shown) -> str:
    return f"**Round {shown.round}** · {_VIEW_TITLES[shown.view]}\n\n{shown.prompt}"


def _int(value: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise CurateError("no item is loaded: reload the page") from None


def _whole(value: Any) -> Any:
    """A form's number as an int (a bad one is left for the library to refuse with its message)."""
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if math.isfinite(number) and number == int(number) else value


def _table(rows: list[dict[str, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows)
