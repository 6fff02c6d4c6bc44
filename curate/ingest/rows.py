"""What a layout makes of one source row: a prompt, its completions, the pairs among them, imported judgments and
the row's other columns as metadata. Every layout honours one contract: ``roles(columns)``, ``matches(columns)``
and ``parse(row) -> Parsed``. Choices are relative to the row's own order (``a`` = the pair's first completion)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from curate.ids import normalise_text
from curate.labels.vocabulary import Source
from curate.rendering import transcript_turns

NOTE_EMPTY = "empty completion kept (the source's own empty answer, judged by its annotators)"
NOTE_SAME = "both completions are the same text"


@dataclass(slots=True)
class Text:
    text: str
    messages: list[dict[str, str]] | None = None
    model: str | None = None
    transcript: bool = False  # messages read from the text (an hh-rlhf transcript): the text stays its identity


def prompt_text(text: str) -> Text:
    """A plain-text prompt, with its turns where it is an hh-rlhf style transcript (``curate.rendering``)."""
    turns = transcript_turns(normalise_text(text))
    return Text(text, turns, transcript=turns is not None)


@dataclass(slots=True)
class Judged:
    """An imported judgment: ``choice`` on pair ``pair`` of the row, or a rating of completion ``completion``:
    ``label`` (good/bad) and/or ``score`` (a number on the source's scale)."""

    source: Source  # gold | crowd | dataset
    annotator: str | None = None
    choice: str | None = None
    label: bool | None = None
    completion: int | None = None
    reason: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    pair: int = 0
    score: float | None = None


@dataclass
class Parsed:
    prompt: Text
    completions: list[Text] = field(default_factory=list)
    source_key: str | None = None  # the source's own row id, where it names its rows
    judgments: list[Judged] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    pairs: list[tuple[int, int]] | None = None  # positions in ``completions``; None: the two completions, if two
    split: str | None = None  # the dataset split the row came from, where the source names splits

    @property
    def pair_positions(self) -> list[tuple[int, int]]:
        if self.pairs is not None:
            return self.pairs
        return [(0, 1)] if len(self.completions) == 2 else []

    @property
    def is_pair(self) -> bool:
        """One pair of two completions (what simulate, drift and stream mode read)."""
        return len(self.completions) == 2 and self.pair_positions == [(0, 1)]


class Layout(Protocol):
    name: str

    def required_columns(self) -> list[str]: ...

    def roles(self, columns: set[str]) -> dict[str, list[str]]:
        """The columns of a file with ``columns`` this layout reads, by role (the rest become metadata)."""
        ...

    def matches(self, columns: set[str]) -> bool: ...

    def parse(self, row: dict[str, Any]) -> Parsed: ...


def same_text(one: Text, two: Text) -> bool:
    """Equal as stored (normalised text, or the same messages): one completion, not two."""
    if one.messages is not None or two.messages is not None:
        return one.messages == two.messages
    return normalise_text(one.text) == normalise_text(two.text)
