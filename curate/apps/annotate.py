"""The annotation app (``curate serve``): pairwise, rank and rewrite views over the project's work queue.

Identity comes only from ``gr.Request.username`` (Gradio auth backed by the store); every handler is a
thin call into ``curate.annotate``. Named API endpoints (``/next``, ``/submit_pair``, ``/submit_rank``,
``/submit_rewrite``, ``/skip``, ``/flag``, ``/undo``, ``/stats``, ``/flagged``; for leads ``/lead`` and
``/adjudicate``) serve gradio_client too.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gradio as gr  # this module is imported only by `curate serve` and the tests
from curate.apps.lead import lead_tab

from curate.annotate import stats as prog
from curate.annotate.diff import diff_html
from curate.annotate.instructions import current_instructions
from curate.annotate.queue import Shown, next_item
from curate.annotate.submit import Saved, skip, submit, undo
from curate.annotate.users import User, check_login, get_user
from curate.errors import CurateError
from curate.labels.vocabulary import Choice
from curate.project import Project
from curate.select.routing import MAX_RANKED

KEYS_JS = """
<script>
document.addEventListener("keydown", (e) => {
  const t = e.target, typing = t && (t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && t.type !== "radio"));
  const visible = (id) => {
    const el = document.getElementById(id);
    return el && el.offsetParent !== null ? el : null;
  };
  if (e.key === "Enter" && (!typing || e.ctrlKey || e.metaKey)) {
    const button = visible("submit-pair") || visible("submit-rank") || visible("submit-rewrite");
    if (button) { e.preventDefault(); button.click(); }
    return;
  }
  if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
  const n = "1234".indexOf(e.key);
  const radios = visible("choice") ? document.querySelectorAll("#choice input[type=radio]") : [];
  if (n >= 0 && radios.length > n) { e.preventDefault(); radios[n].click(); }
});
</script>
"""
CSS = ".completion {border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px;} " \
      ".keys {opacity: 0.75; font-size: 0.9em;} .diff del {background: #fdd;} .diff ins {background: #dfd;}"
BUTTONS = [("1 · A is better", "A"), ("2 · B is better", "B"), ("3 · Tie", str(Choice.TIE)),
           ("4 · Both bad", str(Choice.BOTH_BAD))]


def build_app(project: Project) -> Any:
    """The Gradio Blocks of the annotation app for ``project`` (launch it with :func:`launch`)."""
    rule = project.config.annotate
    store = project.store
    instructions_file = project.root / rule.instructions

    def user_of(request: gr.Request) -> User:
        try:
            return get_user(store, getattr(request, "username", None))
        except CurateError as err:
            raise gr.Error(str(err)) from None

    def shown_updates(user: User, shown: Shown | None) -> list[Any]:
        """Every output of the item area, for ``shown`` (None: nothing left to do)."""
        view = shown.view if shown else None
        texts = shown.completions if shown else []
        ranked = texts if view == "rank" else []
        return [
            shown.as_dict() if shown else None,
            str(shown.assignment) if shown else "", shown.token if shown else "",
            prog.progress_line(store, user, rule),
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

    seen_instructions: dict[tuple[int, int], int] = {}

    def version() -> int:
        """The instructions' version, checked again whenever the file changes."""
        try:
            stat = instructions_file.stat()
            key = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            key = (0, 0)
        if key not in seen_instructions:
            seen_instructions.clear()
            seen_instructions[key] = current_instructions(store, instructions_file)[0]
        return seen_instructions[key]

    def serve_next(request: gr.Request) -> list[Any]:
        user = user_of(request)
        return shown_updates(user, next_item(store, user, rule, instruction_version=version()))

    def api_item(request: gr.Request) -> dict[str, Any] | None:
        """The item to do now, as JSON (for API callers; the page uses /next)."""
        user = user_of(request)
        shown = next_item(store, user, rule, instruction_version=version())
        return shown.as_dict() if shown else None

    def run(request: gr.Request, action: Any, done: str) -> tuple[dict[str, Any], str, str]:
        """Do ``action`` for the logged-in user: (result, message, the assignment Undo would take back).
        A refusal is an error the page (or API caller) shows."""
        user = user_of(request)
        try:
            saved = action(user)
        except CurateError as err:
            raise gr.Error(str(err)) from None
        if isinstance(saved, Saved):
            note = "already saved (a double submit stores nothing new)" if saved.duplicate else done
            return ({"judgment": saved.judgment, "duplicate": saved.duplicate, "assignment": saved.assignment},
                    note, str(saved.assignment))
        return {"assignment": saved}, done, ""

    def on_pair(assignment: str, token: str, choice: str | None, confidence: Any, reason: str,
                request: gr.Request) -> tuple[dict[str, Any], str, str]:
        return run(request, lambda u: submit(store, u, assignment=_int(assignment), token=token, choice=choice,
                                             confidence=_whole(confidence), reason=reason), "saved")

    def on_rank(assignment: str, token: str, confidence: Any, reason: str, request: gr.Request,
                *ranks: Any) -> tuple[dict[str, Any], str, str]:
        return run(request, lambda u: submit(
            store, u, assignment=_int(assignment), token=token, confidence=_whole(confidence), reason=reason,
            ranks=[_whole(r) for r in ranks if r not in (None, "")]), "ranking saved")

    def on_rewrite(assignment: str, token: str, text: str, confidence: Any, reason: str,
                   request: gr.Request) -> tuple[dict[str, Any], str, str]:
        return run(request, lambda u: submit(store, u, assignment=_int(assignment), token=token, text=text,
                                             confidence=_whole(confidence), reason=reason), "rewrite saved")

    def on_skip(assignment: str, token: str, reason: str, request: gr.Request) -> tuple[dict[str, Any], str, str]:
        return run(request, lambda u: skip(store, u, assignment=_int(assignment), token=token, reason=reason),
                   "skipped")

    def on_flag(assignment: str, token: str, reason: str, request: gr.Request) -> tuple[dict[str, Any], str, str]:
        return run(request, lambda u: skip(store, u, assignment=_int(assignment), token=token, reason=reason,
                                           flag=True), "flagged for the leads")

    def on_undo(last: str, request: gr.Request) -> tuple[dict[str, Any], str, str]:
        if not last:
            raise gr.Error("nothing to undo here (each judgment can be undone once, right after it)")
        return run(request, lambda u: undo(store, u, rule, assignment=_int(last)),
                   "last judgment taken back: judge it again")

    def on_stats(request: gr.Request) -> tuple[Any, Any, Any, Any]:
        user = user_of(request)
        rows = prog.annotator_stats(store, only=None if user.role == "lead" else user.id)
        return (prog.progress_line(store, user, rule), _table(rows),
                gr.update(visible=user.role == "lead"), gr.update(visible=user.role == "lead"))

    def on_flagged(request: gr.Request) -> Any:
        user = user_of(request)
        if user.role != "lead":
            raise gr.Error("only leads can review flagged items")
        return _table(prog.flagged_items(store))

    def on_instructions() -> str:
        number, body = current_instructions(store, instructions_file)
        return f"{body}\n\n*Instructions version {number}.*"

    with gr.Blocks(title=f"curate · {project.config.project.name}", analytics_enabled=False) as app:
        header = gr.Markdown(elem_id="progress")
        with gr.Tabs():
            with gr.Tab("Annotate", id="annotate"):
                message = gr.Markdown(elem_id="message")
                prompt = gr.Markdown(elem_id="prompt", line_breaks=True)
                with gr.Group(visible=False, elem_id="pair-view") as pair_view:
                    with gr.Row(equal_height=True):
                        with gr.Column():
                            gr.Markdown("### A")
                            left = gr.Markdown(elem_classes="completion", elem_id="left", line_breaks=True)
                        with gr.Column():
                            gr.Markdown("### B")
                            right = gr.Markdown(elem_classes="completion", elem_id="right", line_breaks=True)
                    choice = gr.Radio(BUTTONS, label="Which is better?", elem_id="choice")
                    submit_pair = gr.Button("Submit (Enter)", variant="primary", elem_id="submit-pair")
                with gr.Group(visible=False, elem_id="rank-view") as rank_view:
                    gr.Markdown("Give each completion a rank: 1 is best; equal ranks are ties.")
                    rank_texts, rank_boxes = [], []
                    for i in range(MAX_RANKED):
                        with gr.Row(equal_height=True):
                            rank_texts.append(gr.Markdown(elem_classes="completion", visible=False, line_breaks=True))
                            rank_boxes.append(gr.Number(label="rank", precision=0, minimum=1, maximum=MAX_RANKED,
                                                        visible=False, scale=0, min_width=90, elem_id=f"rank-{i}"))
                    submit_rank = gr.Button("Submit ranking (Enter)", variant="primary", elem_id="submit-rank")
                with gr.Group(visible=False, elem_id="rewrite-view") as rewrite_view:
                    original = gr.Textbox(label="Original", interactive=False, lines=6, elem_id="original")
                    editor = gr.Textbox(label="Your rewrite", lines=10, elem_id="editor")
                    diff = gr.HTML(elem_classes="diff", elem_id="diff")
                    submit_rewrite = gr.Button("Save rewrite (Ctrl+Enter)", variant="primary",
                                               elem_id="submit-rewrite")
                with gr.Row():
                    confidence = gr.Radio([1, 2, 3, 4, 5], label="Confidence (optional)", elem_id="confidence")
                    reason = gr.Textbox(label="Reason (optional; required to flag)", elem_id="reason")
                with gr.Row():
                    skip_button = gr.Button("Skip", elem_id="skip")
                    flag_button = gr.Button("Flag", variant="stop", elem_id="flag")
                    undo_button = gr.Button("Undo last", elem_id="undo")
                    reload_button = gr.Button("Next item", elem_id="reload")
                empty = gr.Markdown("**Nothing left to do in the open rounds.** Thank you!", visible=False)
                gr.Markdown("Keys: **1** A · **2** B · **3** tie · **4** both bad · **Enter** submit "
                            "(Ctrl+Enter in a text field)", elem_classes="keys")
                item = gr.JSON(visible="hidden", elem_id="item")
                result = gr.JSON(visible="hidden", elem_id="result")
                assignment = gr.Textbox(visible="hidden", elem_id="assignment")
                token = gr.Textbox(visible="hidden", elem_id="token")
                last_done = gr.Textbox(visible="hidden", elem_id="last-done")
            with gr.Tab("Instructions", id="instructions"):
                instructions = gr.Markdown(elem_id="instructions")
            with gr.Tab("Progress", id="progress-tab") as stats_tab:
                stats_line = gr.Markdown()
                stats = gr.Dataframe(interactive=False, elem_id="stats")
            with gr.Tab("Review", id="review", visible=False) as review_tab:
                flagged = gr.Dataframe(interactive=False, elem_id="flagged")
                refresh_review = gr.Button("Refresh", elem_id="refresh-review")
            adjudicate_tab = lead_tab(project, user_of)[0]

        outputs = [item, assignment, token, header, prompt, pair_view, left, right, choice, rank_view,
                   *rank_texts, *rank_boxes, rewrite_view, original, editor, diff, confidence, reason, empty]
        app.load(serve_next, None, outputs, api_name="next", queue=False)
        gr.api(api_item, api_name="item", queue=False)
        reload_button.click(serve_next, None, outputs, api_name=False, queue=False)
        app.load(on_instructions, None, instructions, api_name=False)
        app.load(on_stats, None, [stats_line, stats, review_tab, adjudicate_tab], api_name=False)
        acknowledged = [result, message, last_done]
        for button, handler, inputs, name in [
                (submit_pair, on_pair, [assignment, token, choice, confidence, reason], "submit_pair"),
                (submit_rank, on_rank, [assignment, token, confidence, reason, *rank_boxes], "submit_rank"),
                (submit_rewrite, on_rewrite, [assignment, token, editor, confidence, reason], "submit_rewrite"),
                (skip_button, on_skip, [assignment, token, reason], "skip"),
                (flag_button, on_flag, [assignment, token, reason], "flag"),
                (undo_button, on_undo, [last_done], "undo")]:
            # The write is acknowledged first; the next item follows (as /next does for API callers).
            button.click(handler, inputs, acknowledged, api_name=name, queue=False).success(
                serve_next, None, outputs, api_name=False, queue=False)
        editor.input(lambda old, new: diff_html(old, new), [original, editor], diff, api_name=False,
                     show_progress="hidden")
        stats_tab.select(on_stats, None, [stats_line, stats, review_tab, adjudicate_tab], api_name="stats")
        review_tab.select(on_flagged, None, flagged, api_name="flagged")
        refresh_review.click(on_flagged, None, flagged, api_name=False)
    app.queue(default_concurrency_limit=8)
    return app


def launch(project: Project, *, host: str = "127.0.0.1", port: int = 7860, block: bool = True) -> Any:
    """Serve the app: Gradio auth against the store, local only unless ``host`` says otherwise, no share
    link, no uploads, no files served from disk. With ``block=False`` it returns the running app."""
    app = build_app(project)
    rule = project.config.annotate

    async def auth(name: str, password: str) -> bool:  # argon2 and a write off the event loop
        import anyio

        return await anyio.to_thread.run_sync(lambda: check_login(project.store, name, password, rule))

    app.launch(server_name=host, server_port=port, share=False, auth=auth, run_history=False,
               auth_message="Log in with the account your lead created (curate user add).",
               head=KEYS_JS, css=CSS, max_file_size=1, allowed_paths=[], blocked_paths=[str(Path(project.root))],
               show_error=False, quiet=True, ssr_mode=False, footer_links=[], prevent_thread_lock=not block,
               inbrowser=False)
    return app


def _prompt_md(shown: Shown) -> str:
    return f"**Round {shown.round}** · {_VIEW_TITLES[shown.view]}\n\n{shown.prompt}"


_VIEW_TITLES = {"pair": "Which answer is better?", "rank": "Order these answers",
                "rewrite": "Improve this answer"}


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
