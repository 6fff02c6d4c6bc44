"""Layouts of known datasets and conventions: UKPConvArg1, PandaLM, Chatbot Arena battles and TRL's chat rows."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from curate.ingest.fields import implicit_prompt
from curate.ingest.rows import NOTE_EMPTY, NOTE_SAME, Judged, Parsed, Text, prompt_text, same_text
from curate.ingest.values import (
    RowProblem,
    blank,
    cell,
    checked_text,
    map_label,
    messages_value,
    meta_value,
    render_messages,
    source_id,
    text_value,
)
from curate.labels.vocabulary import Source


def _present(columns: set[str], roles: dict[str, list[str]]) -> dict[str, list[str]]:
    return {role: found for role, names in roles.items() if (found := [n for n in names if n in columns])}


class UKPConvArg:
    """UKPConvArg1: two arguments on a debate stance, optional gold, and crowd workers' votes."""

    name = "ukp"
    VALUES: ClassVar[dict[str, str]] = {"a1": "a", "a2": "b", "equal": "tie"}

    def required_columns(self) -> list[str]:
        return ["a1", "a2", "workers", "topic"]

    def roles(self, columns: set[str]) -> dict[str, list[str]]:
        return _present(columns, {"prompt": ["topic", "title"], "a": ["a1"], "b": ["a2"], "gold": ["gold"],
                                  "label": ["workers"], "id": ["id"]})

    def matches(self, columns: set[str]) -> bool:
        return set(self.required_columns()) <= columns

    def parse(self, row: dict[str, Any]) -> Parsed:
        topic = text_value(row, "topic")
        debate, _, stance = topic.partition("_")
        title = text_value(row, "title") if row.get("title") is not None else debate.replace("-", " ")
        prompt = (f"Write a convincing argument for this stance.\nDebate: {title}\n"
                  f"Stance: {(stance or debate).replace('-', ' ')}")
        parsed = Parsed(prompt=Text(prompt), completions=[Text(text_value(row, "a1")), Text(text_value(row, "a2"))],
                        meta={"topic": topic})
        if "id" in row:
            parsed.source_key = f"ukp:{source_id(row, 'id')}"
        if same_text(*parsed.completions):
            parsed.notes.append(NOTE_SAME)
        if row.get("gold") is not None:
            parsed.judgments.append(Judged(Source.GOLD, choice=map_label(row["gold"], "gold", self.VALUES)))
        workers = cell(row, "workers")
        if not isinstance(workers, list):
            raise RowProblem("wrong list shape: field 'workers' must be a list of votes")
        for number, vote in enumerate(workers, start=1):
            if not isinstance(vote, dict) or not {"worker", "value"} <= vote.keys():
                raise RowProblem(f"wrong list shape: workers vote {number} needs 'worker' and 'value'")
            worker = text_value(vote, "worker")
            reason = text_value(vote, "reason", allow_empty=True) if vote.get("reason") is not None else None
            competence = vote.get("competence")
            meta = ({"competence": meta_value(competence, f"workers vote {number} competence")}
                    if isinstance(competence, (int, float)) else {})
            parsed.judgments.append(Judged(Source.CROWD, annotator=f"ukp:{worker}", meta=meta,
                                           reason=None if reason is None or blank(reason) else reason,
                                           choice=map_label(vote["value"], f"workers[{number}].value", self.VALUES)))
        return parsed


class PandaLM:
    """PandaLM test set: instruction (+ input), two responses, annotators 1/2 = better response, 0 = tie."""

    name = "pandalm"
    VALUES: ClassVar[dict[str, str]] = {"0": "tie", "1": "a", "2": "b"}
    ANNOTATOR = re.compile(r"annotator\d+$")

    def required_columns(self) -> list[str]:
        return ["instruction", "response1", "response2"]

    def roles(self, columns: set[str]) -> dict[str, list[str]]:
        return _present(columns, {"prompt": ["instruction", "input"], "a": ["response1"], "b": ["response2"],
                                  "label": sorted(c for c in columns if self.ANNOTATOR.match(c)), "id": ["idx"]})

    def matches(self, columns: set[str]) -> bool:
        return set(self.required_columns()) <= columns

    def parse(self, row: dict[str, Any]) -> Parsed:
        parts = [text_value(row, "instruction", allow_empty=True)]
        parts += [text_value(row, "input", allow_empty=True)] if "input" in row else []
        prompt = "\n\n".join(p for p in parts if not blank(p))
        if not prompt:
            raise RowProblem("fields 'instruction' and 'input' are both empty")
        models = checked_text(str(row.get("cmp_key") or ""), "field 'cmp_key'").split("_")
        models = models if len(models) == 2 else [None, None]
        parsed = Parsed(prompt=prompt_text(prompt))
        for number, model in zip((1, 2), models, strict=True):
            key = f"response{number}"
            value = row.get(key)
            if isinstance(value, bool):
                # testset-v1 stores a few "True"/"False" answers as JSON booleans; kept as that text, noted.
                parsed.notes.append("a response is a JSON boolean in the source; kept as its text True/False")
                value = "True" if value else "False"
            else:
                value = text_value(row, key, allow_empty=True)
                if blank(value):
                    parsed.notes.append(NOTE_EMPTY)
            parsed.completions.append(Text(value, model=model))
        if "idx" in row:
            parsed.source_key = f"pandalm:{source_id(row, 'idx')}"
        for key in sorted(k for k in row if self.ANNOTATOR.match(k)):
            parsed.judgments.append(Judged(Source.CROWD, annotator=f"pandalm:{key}",
                                           choice=map_label(row[key], key, self.VALUES)))
        if same_text(*parsed.completions):
            parsed.notes.append(NOTE_SAME)
        return parsed


class Arena:
    """Chatbot Arena battles: two conversations with a shared first turn, the two models, and ``winner``
    (model_a, model_b, tie, or "tie (bothbad)"); ``judge`` is the voter where the file names one."""

    name = "arena"
    WINNERS: ClassVar[dict[str, str]] = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "both_bad"}

    def required_columns(self) -> list[str]:
        return ["conversation_a", "conversation_b", "winner"]

    def roles(self, columns: set[str]) -> dict[str, list[str]]:
        return _present(columns, {"a": ["conversation_a"], "b": ["conversation_b"], "label": ["winner"],
                                  "model": ["model_a", "model_b"], "annotator": ["judge"], "id": ["question_id"]})

    def matches(self, columns: set[str]) -> bool:
        return set(self.required_columns()) <= columns

    def parse(self, row: dict[str, Any]) -> Parsed:
        parsed = implicit_prompt(row, "conversation_a", "conversation_b")
        for side, text in zip("ab", parsed.completions, strict=True):
            key = f"model_{side}"
            if row.get(key) is not None:
                text.model = text_value(row, key)
        if any(m["role"] == "user" for c in parsed.completions for m in c.messages or []):
            parsed.notes.append("a multi-turn battle: each completion holds the later turns of its conversation")
        if same_text(*parsed.completions):
            parsed.notes.append(NOTE_SAME)
        if "question_id" in row:
            parsed.source_key = f"arena:{source_id(row, 'question_id')}"
        judge = text_value(row, "judge") if row.get("judge") is not None else None
        parsed.judgments.append(Judged(Source.CROWD if judge else Source.DATASET,
                                       annotator=f"arena:{judge}" if judge else None,
                                       choice=map_label(cell(row, "winner"), "winner", self.WINNERS)))
        return parsed


class Chat:
    """TRL conversational language modelling: ``messages`` whose last turn is the assistant's completion."""

    name = "chat"

    def required_columns(self) -> list[str]:
        return ["messages"]

    def roles(self, columns: set[str]) -> dict[str, list[str]]:
        return {"conversation": ["messages"]}

    def matches(self, columns: set[str]) -> bool:
        return "messages" in columns and not columns & {"prompt", "chosen", "rejected", "completion"}

    def parse(self, row: dict[str, Any]) -> Parsed:
        messages = messages_value(row, "messages")
        if len(messages) < 2 or messages[-1]["role"] != "assistant":
            raise RowProblem("wrong list shape: 'messages' must end with an assistant turn after a prompt")
        prompt, last = messages[:-1], messages[-1:]
        return Parsed(prompt=Text(render_messages(prompt), prompt), completions=[Text(render_messages(last), last)])
