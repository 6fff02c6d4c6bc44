"""Row layouts: how the columns of one row become a prompt, completions, a pair and judgments.

Every layout honours one contract: ``matches(columns)`` and ``parse(row) -> Parsed``. Choices in
``Parsed`` are relative to the row's own order (``a`` = the first completion).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from curate.errors import InputError
from curate.ids import normalise_text
from curate.ingest.values import (
    RowProblem,
    blank,
    cell,
    checked_text,
    is_messages,
    map_label,
    messages_value,
    meta_value,
    render_messages,
    source_id,
    text_value,
)
from curate.labels.vocabulary import CHOICES, Choice, Source

RATINGS = {"good": True, "bad": False}
HH_MARKER = "\n\nAssistant:"


@dataclass(slots=True)
class Text:
    text: str
    messages: list[dict[str, str]] | None = None
    model: str | None = None


@dataclass(slots=True)
class Judged:
    """An imported judgment: ``choice`` on the pair, or ``label`` on completion ``completion``."""

    source: Source  # gold | crowd | dataset
    annotator: str | None = None
    choice: str | None = None
    label: bool | None = None
    completion: int | None = None
    reason: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Parsed:
    prompt: Text
    completions: list[Text] = field(default_factory=list)
    source_key: str | None = None  # the source's own row id, where it names its rows
    judgments: list[Judged] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def is_pair(self) -> bool:
        return len(self.completions) == 2


class Layout(Protocol):
    name: str

    def required_columns(self) -> list[str]: ...

    def matches(self, columns: set[str]) -> bool: ...

    def parse(self, row: dict[str, Any]) -> Parsed: ...


def same_text(one: Text, two: Text) -> bool:
    """Equal as stored (normalised text, or the same messages): one completion, not two."""
    if one.messages is not None or two.messages is not None:
        return one.messages == two.messages
    return normalise_text(one.text) == normalise_text(two.text)


NOTE_EMPTY = "empty completion kept (the source's own empty answer, judged by its annotators)"
NOTE_SAME = "both completions are the same text"


class UKPConvArg:
    """UKPConvArg1: two arguments on a debate stance, optional gold, and crowd workers' votes."""

    name = "ukp"
    VALUES: ClassVar[dict[str, str]] = {"a1": "a", "a2": "b", "equal": "tie"}

    def required_columns(self) -> list[str]:
        return ["a1", "a2", "workers", "topic"]

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

    def matches(self, columns: set[str]) -> bool:
        return set(self.required_columns()) <= columns

    def parse(self, row: dict[str, Any]) -> Parsed:
        parts = [text_value(row, "instruction", allow_empty=True)]
        parts += [text_value(row, "input", allow_empty=True)] if "input" in row else []
        prompt = "\n\n".join(p for p in parts if not blank(p))
        if not prompt:
            raise RowProblem("fields 'instruction' and 'input' are both empty")
        meta = {k: meta_value(row[k], f"field '{k}'") for k in ("motivation_app", "cmp_key") if k in row}
        models = checked_text(str(row.get("cmp_key") or ""), "field 'cmp_key'").split("_")
        models = models if len(models) == 2 else [None, None]
        parsed = Parsed(prompt=Text(prompt), meta=meta)
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


class Chat:
    """TRL conversational language modelling: ``messages`` whose last turn is the assistant's completion."""

    name = "chat"

    def required_columns(self) -> list[str]:
        return ["messages"]

    def matches(self, columns: set[str]) -> bool:
        return "messages" in columns and not columns & {"prompt", "chosen", "rejected", "completion"}

    def parse(self, row: dict[str, Any]) -> Parsed:
        messages = messages_value(row, "messages")
        if len(messages) < 2 or messages[-1]["role"] != "assistant":
            raise RowProblem("wrong list shape: 'messages' must end with an assistant turn after a prompt")
        prompt, last = messages[:-1], messages[-1:]
        return Parsed(prompt=Text(render_messages(prompt), prompt), completions=[Text(render_messages(last), last)])


@dataclass
class Fields:
    """Any layout described by column roles: the TRL formats, and every ``--map``.

    ``columns[role]`` lists the columns that fill a role: prompt (joined by blank lines), chosen,
    rejected, a, b, completion, id, and label (one column = the dataset's label; several = one
    annotator each).
    """

    name: str
    columns: dict[str, list[str]]
    label_values: dict[str, str] = field(default_factory=dict)
    annotator_prefix: str = ""

    def required_columns(self) -> list[str]:
        return [c for cols in self.columns.values() for c in cols]

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
                parsed.completions.append(self._completion(row, key, chat=parsed.prompt.messages is not None))
        if "id" in roles:
            parsed.source_key = f"{self.name}:{source_id(row, roles['id'][0])}"
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
        return Text(prompt)

    def _completion(self, row: dict[str, Any], key: str, *, chat: bool) -> Text:
        if chat != is_messages(row.get(key)):
            raise RowProblem(f"wrong list shape: field '{key}' must be {'a list of messages' if chat else 'text'} "
                             f"like the prompt")
        if chat:
            messages = messages_value(row, key)
            return Text(render_messages(messages), messages)
        return Text(text_value(row, key))

    def _pair(self, row: dict[str, Any], first: str, second: str) -> Parsed:
        if "prompt" in self.columns:
            prompt = self._prompt(row)
            chat = prompt.messages is not None
            return Parsed(prompt=prompt, completions=[self._completion(row, k, chat=chat) for k in (first, second)])
        return implicit_prompt(row, first, second)

    def _labels(self, row: dict[str, Any], parsed: Parsed) -> None:
        keys = self.columns.get("label", [])
        for key in keys:
            annotator = f"{self.annotator_prefix}{key}" if len(keys) > 1 else None
            source = Source.CROWD if annotator else Source.DATASET
            value = map_label(cell(row, key), key, self.label_values)
            if parsed.is_pair:
                parsed.judgments.append(Judged(source, annotator, choice=value))
            else:
                parsed.judgments.append(Judged(source, annotator, label=RATINGS[value], completion=0))


def implicit_prompt(row: dict[str, Any], first: str, second: str) -> Parsed:
    """Split two full transcripts into their shared prompt and their completions (TRL's implicit prompt).

    hh-rlhf style text is cut after the last shared ``Assistant:`` turn (its empty answers are kept);
    other text at the last shared whitespace; message lists after the last shared message.
    """
    if is_messages(row.get(first)) or is_messages(row.get(second)):
        one, two = messages_value(row, first), messages_value(row, second)
        shared = 0
        while shared < min(len(one), len(two)) and one[shared] == two[shared]:
            shared += 1
        if shared == 0 or shared in (len(one), len(two)):
            raise RowProblem(f"'{first}' and '{second}' share no leading messages to use as the prompt "
                             "(add a prompt column)")
        prompt = one[:shared]
        return Parsed(prompt=Text(render_messages(prompt), prompt),
                      completions=[Text(render_messages(m[shared:]), m[shared:]) for m in (one, two)])
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
    parsed.prompt = Text(one[:cut])
    if blank(parsed.prompt.text):
        raise RowProblem(f"'{first}' and '{second}' share no prompt to split off (add a prompt column)")
    return parsed


PAIR_VALUES = {str(c): str(c) for c in CHOICES}
RATING_VALUES = {"true": "good", "false": "bad", "good": "good", "bad": "bad"}

LAYOUTS: list[Layout] = [
    UKPConvArg(),
    PandaLM(),
    Fields("preference", {"prompt": ["prompt"], "chosen": ["chosen"], "rejected": ["rejected"]}),
    Fields("implicit-preference", {"chosen": ["chosen"], "rejected": ["rejected"]}),
    Fields("unpaired-preference", {"prompt": ["prompt"], "completion": ["completion"], "label": ["label"]},
           RATING_VALUES),
    Fields("prompt-completion", {"prompt": ["prompt"], "completion": ["completion"]}),
    Chat(),
    Fields("prompt-only", {"prompt": ["prompt"]}),
]

MAP_ROLES = ("prompt", "chosen", "rejected", "a", "b", "completion", "label", "id")


def detect_layout(columns: set[str], where: str) -> Layout:
    """The first layout whose columns are all present."""
    for layout in LAYOUTS:
        if layout.matches(columns):
            return layout
    raise InputError(f"{where}: cannot tell the layout from the columns ({', '.join(sorted(columns)) or 'none'}); "
                     "use --map, e.g. --map prompt=question,a=answer_1,b=answer_2,label=winner")


def mapped_layout(spec: str, label_values: str | None, *, annotator_prefix: str) -> Fields:
    """A layout from ``--map role=COL[+COL],...`` and ``--label-values VALUE=CHOICE,...``."""
    columns: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        role, sep, cols = part.partition("=")
        role = role.strip()
        if not sep or not cols.strip():
            raise InputError(f"--map: '{part}' is not ROLE=COLUMN")
        if role not in MAP_ROLES:
            raise InputError(f"--map: unknown role '{role}' (roles: {', '.join(MAP_ROLES)})")
        if role in columns:
            raise InputError(f"--map: role '{role}' is given twice")
        names = [c.strip() for c in cols.split("+")]
        if len(names) > 1 and role not in ("prompt", "label"):
            raise InputError(f"--map: only prompt and label take several columns, not '{role}'")
        columns[role] = names
    roles = set(columns)
    pair = {"chosen", "rejected"} & roles or {"a", "b"} & roles
    if ({"chosen", "rejected"} & roles and not {"chosen", "rejected"} <= roles) or (
            {"a", "b"} & roles and not {"a", "b"} <= roles):
        raise InputError("--map: a pair needs both chosen and rejected, or both a and b")
    if len([g for g in ({"chosen"}, {"a"}, {"completion"}) if g & roles]) > 1:
        raise InputError("--map: give one of chosen/rejected, a/b or completion")
    if "prompt" not in roles and "chosen" not in roles:
        raise InputError("--map: a prompt column is needed (only chosen/rejected transcripts may omit it)")
    if "label" in roles and not ({"a"} & roles or "completion" in roles):
        raise InputError("--map: label needs a/b (pair choices) or completion (good/bad ratings)")
    targets = PAIR_VALUES if pair else RATING_VALUES
    values = dict(targets)
    for part in filter(None, (p.strip() for p in (label_values or "").split(","))):
        value, sep, target = part.partition("=")
        target = target.strip().lower()
        allowed = sorted(set(targets.values()))
        if not sep or target not in allowed:
            raise InputError(f"--label-values: '{part}' must be VALUE=ONE_OF({'|'.join(allowed)})")
        values[value.strip().lower()] = target
    if label_values and "label" not in roles:
        raise InputError("--label-values needs a label column in --map")
    roles_of: dict[str, str] = {}
    for role, names in columns.items():
        for name in names:
            if name in roles_of:  # a=X,b=X would pair every text with itself
                raise InputError(f"--map: column '{name}' is given to both {roles_of[name]} and {role}")
            roles_of[name] = role
    return Fields("map", columns, values, annotator_prefix)
