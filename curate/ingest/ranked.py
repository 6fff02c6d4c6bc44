"""Rank-N rows: a prompt with N completions and optional per-completion scores (UltraFeedback's raw form, or a
``responses`` list with a parallel ``ratings`` list). Completions are stored once; each score is kept as a
``rating`` judgment; pairs are derived by a rule, each labelled by its two scores where both have one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from curate.errors import InputError
from curate.ingest.rows import Judged, Parsed, Text, prompt_text, same_text
from curate.ingest.values import (
    NOT_KEPT,
    RowProblem,
    blank,
    cell,
    kept_value,
    score_value,
    source_id,
    text_of,
    text_value,
)
from curate.labels.vocabulary import Choice, Source

# auto (the default): best-vs-each where the row has two scored completions, else all; all: every two completions;
# best-vs-each: the top-scored against each other one; best-vs-worst: the top against the bottom; best-vs-random: the
# top against one other scored one drawn by a hash of the prompt (UltraFeedback-binarized's rule)
PAIR_RULES = ("auto", "all", "best-vs-each", "best-vs-worst", "best-vs-random")
TEXT_FIELDS = ("response", "text", "completion", "content", "output")
SCORE_FIELDS = ("fine-grained_score", "overall_score", "score", "rating")  # of a completion object, first found


def derive_pairs(scores: list[float | None], rule: str, *, key: str) -> list[tuple[int, int]]:
    """The pairs (positions) ``rule`` takes from completions with ``scores`` (None: unscored). The best is the
    highest score, the first of equals; ``key`` (the prompt) seeds best-vs-random, so a file gives the same pairs
    every time. ``auto`` is best-vs-each where two completions have a score, else all."""
    n = len(scores)
    scored = [i for i, s in enumerate(scores) if s is not None]
    if rule == "auto":
        rule = "best-vs-each" if len(scored) >= 2 else "all"
    if rule == "all":
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    if len(scored) < 2:
        raise RowProblem(f"pair rule {rule} needs two scored completions; the row has {len(scored)} "
                         "(--pairs all takes every two)")
    best = max(scored, key=lambda i: (scores[i], -i))
    others = [i for i in scored if i != best]
    if rule == "best-vs-each":  # unscored ones too: pairs for people to label
        return [(best, i) for i in range(n) if i != best]
    if rule == "best-vs-worst":
        return [(best, min(others, key=lambda i: (scores[i], -i)))]
    draw = int.from_bytes(hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()[:8], "big")
    return [(best, others[draw % len(others)])]


@dataclass
class Ranked:
    """A prompt column (or several, joined), a list column of completions (text, or objects with a text field,
    ``model`` and scores) and scores: a parallel list column, or a field of each completion object (``score``:
    which one; None: the first of SCORE_FIELDS in the row's objects)."""

    name: str
    prompt: list[str]
    completions: list[str]  # the first present is read
    score: str | None = None
    rule: str = "auto"
    id_column: str | None = None
    score_columns: tuple[str, ...] = ()  # parallel list columns looked for when ``score`` is None

    def __post_init__(self) -> None:
        if self.rule not in PAIR_RULES:
            raise InputError(f"--pairs must be one of {', '.join(PAIR_RULES)}, not '{self.rule}'")

    def required_columns(self) -> list[str]:
        return [*self.prompt, self.completions[0]] if len(self.completions) == 1 else list(self.prompt)

    def roles(self, columns: set[str]) -> dict[str, list[str]]:
        roles = {"prompt": self.prompt, "completions": [c for c in self.completions if c in columns][:1]}
        score = self._score_column(columns)
        if score:
            roles["score"] = [score]
        if self.id_column:
            roles["id"] = [self.id_column]
        return roles

    def matches(self, columns: set[str]) -> bool:
        return set(self.prompt) <= columns and any(c in columns for c in self.completions)

    def _score_column(self, columns: set[str] | dict[str, Any]) -> str | None:
        if self.score is not None:
            return self.score if self.score in columns else None
        return next((c for c in self.score_columns if c in columns), None)

    def parse(self, row: dict[str, Any]) -> Parsed:
        parts = [text_value(row, key, allow_empty=len(self.prompt) > 1) for key in self.prompt]
        prompt = "\n\n".join(p for p in parts if not blank(p))
        if not prompt:
            raise RowProblem(f"fields {', '.join(repr(k) for k in self.prompt)} are all empty")
        key = next((c for c in self.completions if c in row), self.completions[0])
        items = cell(row, key)
        if isinstance(items, str):
            raise RowProblem(f"wrong list shape: field '{key}' is text, not a list of completions (a CSV cell cannot "
                             "hold a list: use JSON Lines or Parquet)")
        if not isinstance(items, list) or not items:
            raise RowProblem(f"wrong list shape: field '{key}' must be a non-empty list of completions")
        parsed = Parsed(prompt=prompt_text(prompt))
        found = [_item(item, f"field '{key}' item {n}", parsed.notes) for n, item in enumerate(items, 1)]
        scores, field = self._scores(row, key, found, parsed.notes)
        if self.id_column:
            parsed.source_key = f"{self.name}:{source_id(row, self.id_column)}"
        texts, positions = _merge_same([text for text, _ in found], parsed.notes)
        parsed.completions = texts
        pair_scores: list[list[float]] = [[] for _ in texts]
        for n, ((_, fields), score) in enumerate(zip(found, scores, strict=True)):
            kept = {k: v for k, v in fields.items() if k != field}
            if score is None:
                if kept:
                    parsed.notes.append(f"fields {', '.join(sorted(kept))} of an unscored completion are not kept")
                continue
            pair_scores[positions[n]].append(score)
            parsed.judgments.append(Judged(Source.DATASET, completion=positions[n], score=score,
                                           meta={"field": field, **kept}))
        merged = []
        for found_scores in pair_scores:
            if len(set(found_scores)) > 1:
                parsed.notes.append("a text given twice with different scores is kept once with both ratings; its "
                                    "pairs have no label")
            merged.append(found_scores[0] if len(set(found_scores)) == 1 else None)
        parsed.pairs = derive_pairs(merged, self.rule, key=prompt)
        for number, (i, j) in enumerate(parsed.pairs):
            if merged[i] is not None and merged[j] is not None:
                choice = Choice.A if merged[i] > merged[j] else Choice.B if merged[i] < merged[j] else Choice.TIE
                parsed.judgments.append(Judged(Source.DATASET, choice=choice, pair=number,
                                               meta={"from": "scores", "rule": self.rule}))
        return parsed

    def _scores(self, row: dict[str, Any], key: str, found: list[tuple[Text, dict[str, Any]]],
                notes: list[str]) -> tuple[list[float | None], str | None]:
        """Each completion's score (None: none) and where it came from: a parallel list column, or a field of the
        completion objects (the mapped one, else the first of SCORE_FIELDS any of them has)."""
        column = self._score_column(row)
        if column is not None:
            listed = cell(row, column)
            if not isinstance(listed, list) or len(listed) != len(found):
                raise RowProblem(f"wrong list shape: field '{column}' must be a list of {len(found)} scores, one per "
                                 f"completion in '{key}'")
            return [score_value(s, f"field '{column}' item {n}") for n, s in enumerate(listed, 1)], column
        fields = [f for _, f in found]
        field = self.score or next((f for f in SCORE_FIELDS if any(f in item for item in fields)), None)
        if self.score is not None and not any(self.score in item for item in fields):
            raise RowProblem(f"no completion in '{key}' has the score field '{self.score}' (fields: "
                             f"{', '.join(sorted({k for item in fields for k in item})) or 'none'})")
        if field is None:
            numeric = sorted({k for item in fields for k, v in item.items()
                              if isinstance(v, (int, float)) and not isinstance(v, bool)})
            if numeric:
                notes.append(f"completion fields {', '.join(numeric)} are not read as scores (--map ...,score=FIELD "
                             "reads one)")
            return [None] * len(found), None
        scores = [score_value(item.get(field), f"field '{key}' item {n} '{field}'") for n, item in enumerate(fields, 1)]
        if any(field not in item for item in fields):
            notes.append(f"a completion without '{field}' is unscored (its pairs have no label from the scores)")
        return scores, field


def _item(item: Any, what: str, notes: list[str]) -> tuple[Text, dict[str, Any]]:
    """A completion of a list: text, or an object with a text field, optional ``model`` and other fields."""
    if isinstance(item, str):
        return Text(text_of(item, what)), {}
    if not isinstance(item, dict):
        raise RowProblem(f"wrong list shape: {what} must be text or an object with a text field")
    text_key = next((f for f in TEXT_FIELDS if f in item), None)
    if text_key is None:
        raise RowProblem(f"wrong list shape: {what} has none of the text fields {', '.join(TEXT_FIELDS)}")
    model = text_of(item["model"], f"{what} 'model'") if item.get("model") is not None else None
    fields = {}
    for key, value in item.items():
        if key in (text_key, "model"):
            continue
        kept, note = kept_value(value, f"{what} '{key}'")
        if note:
            notes.append(f"completion field '{key}' {note}")
        if kept is not NOT_KEPT:
            fields[key] = kept
    return Text(text_of(item[text_key], f"{what} '{text_key}'"), model=model), fields


def _merge_same(texts: list[Text], notes: list[str]) -> tuple[list[Text], list[int]]:
    """The distinct completions (a text given twice is one completion, as the store keeps it) and each item's
    position among them."""
    distinct: list[Text] = []
    positions = []
    for text in texts:
        at = next((i for i, seen in enumerate(distinct) if same_text(seen, text)), None)
        if at is None:
            at = len(distinct)
            distinct.append(text)
        else:
            models = ", ".join(m for m in (distinct[at].model, text.model) if m)
            notes.append(f"the same text given twice ({models or 'no models named'}): stored once")
        positions.append(at)
    return distinct, positions
