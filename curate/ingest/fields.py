"""Layouts described by column roles: TRL's dataset types, UltraFeedback-binarized, and every ``--map``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from curate.ids import normalise_text
from curate.ingest.rows import NOTE_EMPTY, NOTE_SAME, Judged, Parsed, Text, prompt_text, same_text
from curate.ingest.values import (
    RowProblem,
    blank,
    cell,
    is_messages,
    map_label,
    messages_value,
    render_messages,
    score_value,
    source_id,
    text_value,
)
from curate.labels.vocabulary import CHOICES, Choice, Source

RATINGS = {"good": True, "bad": False}
HH_MARKER = "\n\nAssistant:"
PAIR_VALUES = {str(c): str(c) for c in CHOICES}
RATING_VALUES = {"true": "good", "false": "bad", "good": "good", "bad": "bad"}


@dataclass
class Fields:
    """Any layout described by column roles.

    ``columns[role]`` lists the columns that fill a role: prompt (joined by blank lines), chosen, rejected, a, b,
    completion, id, label (one column = the dataset's label; several = one annotator each), gold (the gold
    label) and score (per completion: the chosen's and the rejected's, or a's and b's; kept as ratings).
    """

    name: str
    columns: dict[str, list[str]]
    label_values: dict[str, str] = field(default_factory=dict)
    annotator_prefix: str = ""
    optional: tuple[str, ...] = ()  # columns read where present and not stored (a copy of another column)

    def required_columns(self) -> list[str]:
        return [c for cols in self.columns.values() for c in cols]

    def roles(self, columns: set[str]) -> dict[str, list[str]]:
        ignored = [c for c in self.optional if c in columns]
        return {**self.columns, **({"ignored": ignored} if ignored else {})}

    def matches(self, columns: set[str]) -> bool:
        return set(self.required_columns()) <= columns

    def parse(self, row: dict[str, Any]) -> Parsed:
        roles = self.columns
        if "chosen" in roles:
            parsed = self._pair(row, roles["chosen"][0], roles["rejected"][0])
            if same_text(*parsed.completions):
                raise RowProblem(f"'{roles['chosen'][0]}' and '{roles['rejected'][0]}' are the same text")
            parsed.judgments.append(Judged(Source.DATASET, choice=Choice.A))
        elif "a" in roles:
            parsed = self._pair(row, roles["a"][0], roles["b"][0])
            if same_text(*parsed.completions):
                parsed.notes.append(NOTE_SAME)
        else:
            parsed = Parsed(prompt=self._prompt(row))
            if "completion" in roles:
                key = roles["completion"][0]
                parsed.completions.append(self._completion(row, key, chat=_given_as_messages(parsed.prompt)))
        if "id" in roles:
            parsed.source_key = f"{self.name}:{source_id(row, roles['id'][0])}"
        for position, key in enumerate(roles.get("score", [])):
            score = score_value(cell(row, key), f"field '{key}'")
            if score is not None:
                parsed.judgments.append(Judged(Source.DATASET, completion=position, score=score,
                                               meta={"field": key}))
        self._labels(row, parsed)
        return parsed

    def _prompt(self, row: dict[str, Any]) -> Text:
        keys = self.columns["prompt"]
        if len(keys) == 1 and is_messages(row.get(keys[0])):
            messages = messages_value(row, keys[0])
            return Text(render_messages(messages), messages)
        parts = [text_value(row, key, allow_empty=len(keys) > 1) for key in keys]
        prompt = "\n\n".join(p for p in parts if not blank(p))
        if not prompt:
            raise RowProblem(f"fields {', '.join(repr(k) for k in keys)} are all empty")
        return prompt_text(prompt)

    def _completion(self, row: dict[str, Any], key: str, *, chat: bool) -> Text:
        if chat != is_messages(row.get(key)):
            raise RowProblem(f"wrong list shape: field '{key}' must be {'a list of messages' if chat else 'text'} "
                             f"like the prompt")
        if chat:
            messages = messages_value(row, key)
            return Text(render_messages(messages), messages)
        return Text(text_value(row, key))

    def _pair(self, row: dict[str, Any], first: str, second: str) -> Parsed:
        if "prompt" not in self.columns:
            return implicit_prompt(row, first, second)
        prompt = self._prompt(row)
        chat = _given_as_messages(prompt)
        if not chat and is_messages(cell(row, first)) and is_messages(cell(row, second)):
            return _repeated_prompt(row, prompt, self.columns["prompt"][0], first, second)
        return Parsed(prompt=prompt, completions=[self._completion(row, k, chat=chat) for k in (first, second)])

    def _labels(self, row: dict[str, Any], parsed: Parsed) -> None:
        keys = self.columns.get("label", [])
        labelled = [(key, Source.CROWD if len(keys) > 1 else Source.DATASET) for key in keys]
        labelled += [(key, Source.GOLD) for key in self.columns.get("gold", [])]
        for key, source in labelled:
            annotator = f"{self.annotator_prefix}{key}" if source == Source.CROWD else None
            value = map_label(cell(row, key), key, self.label_values)
            if parsed.is_pair:
                parsed.judgments.append(Judged(source, annotator, choice=value))
            else:
                parsed.judgments.append(Judged(source, annotator, label=RATINGS[value], completion=0))


def _given_as_messages(prompt: Text) -> bool:
    """Whether the source gave the prompt as messages (its completions must then be messages too)."""
    return prompt.messages is not None and not prompt.transcript


def _repeated_prompt(row: dict[str, Any], prompt: Text, prompt_key: str, first: str, second: str) -> Parsed:
    """Whole conversations that repeat a text prompt as their user turn (UltraFeedback-binarized): the shared
    turns become the prompt, if their last user turn is the prompt."""
    parsed = _split_conversations(row, first, second)
    users = [m["content"] for m in parsed.prompt.messages or [] if m["role"] == "user"]
    if not users or normalise_text(users[-1]) != normalise_text(prompt.text):
        raise RowProblem(f"'{first}' and '{second}' are conversations whose shared user turn is not "
                         f"'{prompt_key}'")
    return parsed


def _split_conversations(row: dict[str, Any], first: str, second: str) -> Parsed:
    """Two conversations split into their shared leading turns (the prompt) and the rest (TRL's
    ``extract_prompt``)."""
    from trl.data_utils import extract_prompt

    one, two = messages_value(row, first), messages_value(row, second)
    split = extract_prompt({"chosen": one, "rejected": two})
    prompt, completions = split["prompt"], [split["chosen"], split["rejected"]]
    if not prompt or not all(completions):
        raise RowProblem(f"'{first}' and '{second}' share no leading messages to use as the prompt "
                         "(add a prompt column)")
    return Parsed(prompt=Text(render_messages(prompt), prompt),
                  completions=[Text(render_messages(m), m) for m in completions])


def implicit_prompt(row: dict[str, Any], first: str, second: str) -> Parsed:
    """Split two full transcripts into their shared prompt and their completions (TRL's implicit prompt).

    hh-rlhf style text is cut after the last shared ``Assistant:`` turn (its empty answers are kept) and the
    prompt keeps its turns;
    other text at the last shared whitespace; message lists after the last shared message.
    """
    if is_messages(row.get(first)) or is_messages(row.get(second)):
        return _split_conversations(row, first, second)
    one, two = text_value(row, first), text_value(row, second)
    if normalise_text(one) == normalise_text(two):
        raise RowProblem(f"'{first}' and '{second}' are the same text")
    end = 0
    while end < min(len(one), len(two)) and one[end] == two[end]:
        end += 1
    marker = one.rfind(HH_MARKER, 0, end)
    parsed = Parsed(prompt=Text(""))
    if marker >= 0:
        cut = marker + len(HH_MARKER)
        parsed.completions = [Text(one[cut:]), Text(two[cut:])]
        if any(blank(c.text) for c in parsed.completions):
            parsed.notes.append(NOTE_EMPTY)
    else:
        cut = max(one.rfind(" ", 0, end), one.rfind("\n", 0, end))
        parsed.completions = [Text(one[cut:]), Text(two[cut:])]
        if cut <= 0 or any(blank(c.text) for c in parsed.completions):
            raise RowProblem(f"'{first}' and '{second}' share no prompt to split off (add a prompt column)")
    parsed.prompt = prompt_text(one[:cut]) if marker >= 0 else Text(one[:cut])
    if blank(parsed.prompt.text):
        raise RowProblem(f"'{first}' and '{second}' share no prompt to split off (add a prompt column)")
    return parsed
