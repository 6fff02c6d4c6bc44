"""The app's lead tab: the agreement report with its plots, and the adjudication queue where a lead decides
pairs (a note is required; every decision is a judgment plus an audit entry). Refused server-side for
annotators."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import gradio as gr  # imported only by the app

from curate.annotate.users import User
from curate.apps import inputs
from curate.errors import CurateError
from curate.labels.adjudication import adjudicate, adjudication_queue, pair_detail
from curate.labels.agreement import agreement_report, confusion_with_final, label_table
from curate.labels.plots import annotator_bars, confusion_figure
from curate.labels.rule import FinalLabel, final_labels, label_summary
from curate.labels.vocabulary import Choice
from curate.project import Project

DECISIONS = [(name, str(choice)) for name, choice in (("A is better", Choice.A), ("B is better", Choice.B),
                                                      ("Tie", Choice.TIE), ("Both bad", Choice.BOTH_BAD))]
SHOWN = 200  # queue entries listed at once


def lead_tab(project: Project, user_of: Callable[[gr.Request], User]) -> tuple[Any, list[Any], Callable]:
    """Build the tab inside the current Blocks; returns (tab, its outputs, the refresh handler)."""

    def lead(request: gr.Request) -> User:
        user = user_of(request)
        if user.role != "lead":
            raise gr.Error("only leads can see agreement and adjudicate")
        return user

    def on_open(request: gr.Request) -> list[Any]:
        lead(request)
        try:
            report = agreement_report(project, resamples=0)
        except CurateError as err:
            summary, bars, confusion = f"*{err}*", None, None
        else:
            labels = final_labels(project)
            summary = _summary(report, labels, project.config.labels.method)
            bars = annotator_bars(report)
            confusion = confusion_figure(confusion_with_final(label_table(project), labels))
        return [summary, bars, confusion, *on_queue(request)]

    def on_queue(request: gr.Request) -> list[Any]:
        lead(request)
        queue = adjudication_queue(project)
        rows = [{"pair": e.pair_id, "reason": e.reason, "committee P(A)": e.committee_p} for e in queue[:SHOWN]]
        choices = [(f"{e.pair_id[:12]} · {e.reason}", e.pair_id) for e in queue[:SHOWN]]
        return [f"**Adjudication queue: {len(queue)} pairs**", _frame(rows),
                gr.update(choices=choices, value=choices[0][1] if choices else None)]

    def on_pick(pair: str | None, request: gr.Request) -> str:
        lead(request)
        if not pair:
            return "*The queue is empty.*"
        try:
            return _detail_md(pair_detail(project, pair))
        except CurateError as err:
            raise gr.Error(str(err)) from None

    def on_decide(pair: str | None, choice: str | None, note: str, request: gr.Request) -> tuple[str, str]:
        user = lead(request)
        if not pair:
            raise gr.Error("pick a pair from the queue first")
        if not choice:
            raise gr.Error("choose the final label first")
        try:
            label = adjudicate(project, pair=pair, choice=choice, note=note, lead=user.name,
                               actor=f"app:{user.name}")
        except CurateError as err:
            raise gr.Error(str(err)) from None
        return _final_md(label), ""

    with gr.Tab("Adjudicate", id="adjudicate", visible=False) as tab:
        summary = gr.Markdown(elem_id="agreement-summary")
        with gr.Row():
            bars = gr.Plot(elem_id="agreement-bars", show_label=False)
            confusion = gr.Plot(elem_id="confusion", show_label=False)
        queue_title = gr.Markdown(elem_id="queue-title")
        queue = gr.Dataframe(interactive=False, elem_id="adjudication-queue", max_height=240)
        pair = inputs.text(gr.Dropdown(label="Pair to decide", elem_id="adjudicate-pair", allow_custom_value=True))
        detail = gr.Markdown(elem_id="adjudicate-detail", line_breaks=True)
        decision = inputs.choice(gr.Radio(DECISIONS, label="Final label", elem_id="decision"))
        note = inputs.text(gr.Textbox(label="Note (required: why this label)", elem_id="adjudicate-note"))
        decide = gr.Button("Decide", variant="primary", elem_id="decide")
        final = gr.Markdown(elem_id="final-label")
    outputs = [summary, bars, confusion, queue_title, queue, pair]
    pair.change(on_pick, pair, detail, api_name="pair_detail", queue=False)
    decide.click(on_decide, [pair, decision, note], [final, note], api_name="adjudicate", queue=False).success(
        on_queue, None, outputs[3:], api_name=False, queue=False)
    tab.select(on_open, None, outputs, api_name="lead")
    return tab, outputs, on_open


def _summary(report: dict[str, Any], labels: dict[str, FinalLabel], method: str) -> str:
    def f(value: Any) -> str:
        return "n/a" if value is None or value != value else f"{value:.3f}"

    gold = report["methods_vs_gold"]
    lines = [f"**Agreement** on {report['items_multi']} pairs judged by 2+ of {report['annotators']} people: "
             f"percent {f(report['percent_agreement']['value'])} · Fleiss' κ {f(report['fleiss_kappa']['value'])}"
             f" · Krippendorff's α {f(report['krippendorff_alpha']['value'])} · mean Cohen's κ "
             f"{f(report['cohen_kappa']['mean'])}"]
    if gold:
        lines.append(f"Against gold: majority {f(gold['majority']['accuracy'])} ({gold['majority']['items']} "
                     f"pairs) · Dawid–Skene {f(gold['dawid_skene']['accuracy'])} ({gold['dawid_skene']['items']})")
    lines += [f"People's label vs the imported {v['imported']}: agreement {f(v['agreement'])} on {v['decided']} pairs "
              f"· Cohen's κ {f(v['cohen_kappa'])}" for v in report["vs_imported"]]
    counts = ", ".join(f"{how} {n}" for how, n in label_summary(labels).items())
    lines.append(f"Final labels ({method}): {counts}")
    return "\n\n".join(lines)


def _detail_md(detail: dict[str, Any]) -> str:
    """The pair as the annotate tab shows it (prompt and completions as markdown) and the votes, whose names
    and reasons people typed, escaped to plain text."""
    votes = "\n".join(f"- **{_plain(j['name'] or '-')}** ({j['source']}): {j['choice']}"
                      + (f" · {_plain(j['reason'])}" if j["reason"] else "") for j in detail["judgments"])
    return (f"**Prompt**\n\n{detail['prompt']}\n\n**A**\n\n{detail['a']}\n\n**B**\n\n{detail['b']}\n\n"
            f"**Votes**\n\n{votes or '(none)'}")


def _plain(text: str) -> str:
    """``text`` with markdown and HTML syntax escaped, so it shows as typed (no links, images or markup)."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~&])", r"\\\1", " ".join(text.split()))


def _final_md(label: FinalLabel) -> str:
    return f"Final label of {label.pair_id[:12]}: **{label.choice}** · {label.how} by {label.decided_by}"


def _frame(rows: list[dict[str, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=["pair", "reason", "committee P(A)"])
