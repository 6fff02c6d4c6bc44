"""The annotation app (``curate serve``): the Gradio layout of its tabs, wired to :class:`Handlers`."""

# Identity comes only from ``gr.Request.username`` (Gradio auth backed by the store); every handler is a
# thin call into ``curate.annotate``. Named API endpoints (``/next``, ``/item``, ``/submit_pair``,
# ``/submit_rank``, ``/submit_rewrite``, ``/skip``, ``/flag``, ``/undo``, ``/stats``, ``/flagged``; for leads
# ``/lead``, ``/pair_detail`` and ``/adjudicate``) serve gradio_client too.

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr  # this module is imported only by `curate serve` and the tests

from curate.annotate.queue import MAX_RANKED
from curate.apps import inputs
from curate.apps.handlers import Handlers
from curate.apps.lead import lead_tab
from curate.apps.sessions import LoginBackoff, LoginGuard, Sessions, login_check
from curate.labels.vocabulary import Choice
from curate.project import Project

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


class _PairView(NamedTuple):
    group: Any
    left: Any
    right: Any
    choice: Any
    submit: Any


class _RankView(NamedTuple):
    group: Any
    texts: list[Any]
    boxes: list[Any]
    submit: Any


class _RewriteView(NamedTuple):
    group: Any
    original: Any
    editor: Any
    diff: Any
    submit: Any


@dataclass
class _AnnotateTab:
    """The annotate tab's components that events read or write."""

    message: Any
    prompt: Any
    pair: _PairView
    rank: _RankView
    rewrite: _RewriteView
    confidence: Any
    reason: Any
    skip: Any
    flag: Any
    undo: Any
    reload: Any
    empty: Any
    item: Any
    result: Any
    assignment: Any
    token: Any
    last_done: Any

    def item_outputs(self, header: Any) -> list[Any]:
        """The components :meth:`Handlers.item_updates` fills, in its order."""
        return [self.item, self.assignment, self.token, header, self.prompt,
                self.pair.group, self.pair.left, self.pair.right, self.pair.choice,
                self.rank.group, *self.rank.texts, *self.rank.boxes,
                self.rewrite.group, self.rewrite.original, self.rewrite.editor, self.rewrite.diff,
                self.confidence, self.reason, self.empty]


class _SideTabs(NamedTuple):
    instructions: Any
    stats_tab: Any
    stats_line: Any
    stats: Any
    review_tab: Any
    flagged: Any
    refresh_review: Any
    adjudicate_tab: Any


def build_app(project: Project, sessions: Sessions) -> Any:
    """The Gradio Blocks of the annotation app for ``project`` (launch it with :func:`launch`, which makes
    ``sessions`` Gradio's map of logged-in sessions)."""
    handlers = Handlers(project, sessions)
    with gr.Blocks(title=f"curate · {project.config.project.name}", analytics_enabled=False) as app:
        header = gr.Markdown(elem_id="progress")
        with gr.Tabs():
            annotate = _annotate_tab()
            side = _side_tabs(project, handlers)
        _wire(app, handlers, annotate.item_outputs(header), annotate, side)
    app.queue(default_concurrency_limit=8)
    return app


def _annotate_tab() -> _AnnotateTab:
    with gr.Tab("Annotate", id="annotate"):
        message = gr.Markdown(elem_id="message")
        prompt = gr.Markdown(elem_id="prompt", line_breaks=True)
        pair, rank, rewrite = _pair_view(), _rank_view(), _rewrite_view()
        with gr.Row():
            confidence = inputs.choice(gr.Radio([1, 2, 3, 4, 5], label="Confidence (optional)", elem_id="confidence"))
            reason = inputs.text(gr.Textbox(label="Reason (optional; required to flag)", elem_id="reason"))
        with gr.Row():
            skip_button = gr.Button("Skip", elem_id="skip")
            flag_button = gr.Button("Flag", variant="stop", elem_id="flag")
            undo_button = gr.Button("Undo last", elem_id="undo")
            reload_button = gr.Button("Next item", elem_id="reload")
        empty = gr.Markdown("**Nothing left to do in the open rounds.** Thank you!", visible=False)
        gr.Markdown("Keys: **1** A · **2** B · **3** tie · **4** both bad · **Enter** submit "
                    "(Ctrl+Enter in a text field)", elem_classes="keys")
        return _AnnotateTab(
            message=message, prompt=prompt, pair=pair, rank=rank, rewrite=rewrite, confidence=confidence,
            reason=reason, skip=skip_button, flag=flag_button, undo=undo_button, reload=reload_button, empty=empty,
            item=gr.JSON(visible="hidden", elem_id="item"), result=gr.JSON(visible="hidden", elem_id="result"),
            assignment=inputs.text(gr.Textbox(label="assignment", visible="hidden", elem_id="assignment")),
            token=inputs.text(gr.Textbox(label="token", visible="hidden", elem_id="token")),
            last_done=inputs.text(gr.Textbox(label="last judgment", visible="hidden", elem_id="last-done")))


def _pair_view() -> _PairView:
    with gr.Group(visible=False, elem_id="pair-view") as group:
        with gr.Row(equal_height=True):
            with gr.Column():
                gr.Markdown("### A")
                left = gr.Markdown(elem_classes="completion", elem_id="left", line_breaks=True)
            with gr.Column():
                gr.Markdown("### B")
                right = gr.Markdown(elem_classes="completion", elem_id="right", line_breaks=True)
        choice = inputs.choice(gr.Radio(BUTTONS, label="Which is better?", elem_id="choice"))
        submit = gr.Button("Submit (Enter)", variant="primary", elem_id="submit-pair")
    return _PairView(group, left, right, choice, submit)


def _rank_view() -> _RankView:
    with gr.Group(visible=False, elem_id="rank-view") as group:
        gr.Markdown("Give each completion a rank: 1 is best; equal ranks are ties.")
        texts, boxes = [], []
        for i in range(MAX_RANKED):
            with gr.Row(equal_height=True):
                texts.append(gr.Markdown(elem_classes="completion", visible=False, line_breaks=True))
                boxes.append(inputs.number(gr.Number(label="rank", precision=0, minimum=1, maximum=MAX_RANKED,
                                                     visible=False, scale=0, min_width=90, elem_id=f"rank-{i}")))
        submit = gr.Button("Submit ranking (Enter)", variant="primary", elem_id="submit-rank")
    return _RankView(group, texts, boxes, submit)


def _rewrite_view() -> _RewriteView:
    with gr.Group(visible=False, elem_id="rewrite-view") as group:
        original = inputs.text(gr.Textbox(label="Original", interactive=False, lines=6, elem_id="original"))
        editor = inputs.text(gr.Textbox(label="Your rewrite", lines=10, elem_id="editor"))
        diff = gr.HTML(elem_classes="diff", elem_id="diff")
        submit = gr.Button("Save rewrite (Ctrl+Enter)", variant="primary", elem_id="submit-rewrite")
    return _RewriteView(group, original, editor, diff, submit)


def _side_tabs(project: Project, handlers: Handlers) -> _SideTabs:
    """The Instructions, Progress and Review tabs, and the leads' Adjudicate tab."""
    with gr.Tab("Instructions", id="instructions"):
        instructions = gr.Markdown(elem_id="instructions")
    with gr.Tab("Progress", id="progress-tab") as stats_tab:
        stats_line = gr.Markdown()
        stats = gr.Dataframe(interactive=False, elem_id="stats")
    with gr.Tab("Review", id="review", visible=False) as review_tab:
        flagged = gr.Dataframe(interactive=False, elem_id="flagged")
        refresh_review = gr.Button("Refresh", elem_id="refresh-review")
    adjudicate_tab = lead_tab(project, handlers.user_of)[0]
    return _SideTabs(instructions, stats_tab, stats_line, stats, review_tab, flagged, refresh_review, adjudicate_tab)


def _wire(app: Any, handlers: Handlers, outputs: list[Any], tab: _AnnotateTab, side: _SideTabs) -> None:
    """Connect the events to the handlers; ``outputs`` are the components a new item fills."""
    app.load(handlers.serve_next, None, outputs, api_name="next", queue=False)
    gr.api(handlers.api_item, api_name="item", queue=False)
    tab.reload.click(handlers.serve_next, None, outputs, api_name=False, queue=False)
    app.load(handlers.on_instructions, None, side.instructions, api_name=False)  # private: for the page only
    stats_outputs = [side.stats_line, side.stats, side.review_tab, side.adjudicate_tab]
    app.load(handlers.on_stats, None, stats_outputs, api_name=False)
    acknowledged = [tab.result, tab.message, tab.last_done]
    common = [tab.confidence, tab.reason]
    for button, handler, fields, name in [
            (tab.pair.submit, handlers.on_pair, [tab.assignment, tab.token, tab.pair.choice, *common], "submit_pair"),
            (tab.rank.submit, handlers.on_rank, [tab.assignment, tab.token, *common, *tab.rank.boxes], "submit_rank"),
            (tab.rewrite.submit, handlers.on_rewrite, [tab.assignment, tab.token, tab.rewrite.editor, *common],
             "submit_rewrite"),
            (tab.skip, handlers.on_skip, [tab.assignment, tab.token, tab.reason], "skip"),
            (tab.flag, handlers.on_flag, [tab.assignment, tab.token, tab.reason], "flag"),
            (tab.undo, handlers.on_undo, [tab.last_done], "undo")]:
        # The write is acknowledged first; the next item follows (as /next does for API callers).
        button.click(handler, fields, acknowledged, api_name=name, queue=False).success(
            handlers.serve_next, None, outputs, api_name=False, queue=False)
    tab.rewrite.editor.input(handlers.on_edit, [tab.rewrite.original, tab.rewrite.editor], tab.rewrite.diff,
                             api_name=False, show_progress="hidden")
    side.stats_tab.select(handlers.on_stats, None, stats_outputs, api_name="stats")
    side.review_tab.select(handlers.on_flagged, None, side.flagged, api_name="flagged")
    side.refresh_review.click(handlers.on_flagged, None, side.flagged, api_name=False)


def launch(project: Project, *, host: str = "127.0.0.1", port: int = 7860, block: bool = True) -> Any:
    """Serve the app: Gradio auth against the store (sessions bound to their account's generation, a
    per-client back-off on failed logins, one password check at a time), local only unless ``host`` says
    otherwise, no share link, no uploads, no files served from disk. With ``block=False`` it returns the
    running app."""
    from starlette.middleware import Middleware

    sessions = Sessions()
    app = build_app(project, sessions)
    app.launch(server_name=host, server_port=port, share=False, auth=login_check(project), run_history=False,
               auth_message="Log in with the account your lead created (curate user add).",
               head=KEYS_JS, css=CSS, max_file_size=1, allowed_paths=[], blocked_paths=[str(Path(project.root))],
               show_error=False, quiet=True, ssr_mode=False, footer_links=[], prevent_thread_lock=True,
               inbrowser=False, app_kwargs={"middleware": [Middleware(LoginGuard, backoff=LoginBackoff())]})
    app.server_app.tokens = sessions  # before anyone can log in: the server has only just started
    if block:
        app.block_thread()
    return app
