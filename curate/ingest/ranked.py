"""Rank-N rows: a prompt with N completions and optional per-completion scores (UltraFeedback's raw form, or a
``responses`` list with a parallel ``ratings`` list). Completions are stored once; each score is kept as a
``rating`` judgment; pairs are derived by a rule, each labelled by its two scores where both have one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from curate.errors import InputError
from curate.ingest.rows import Judged, Parsed, Text, same_text
from curate.ingest.values import (
    RowProblem,
    blank,
    cell,
    meta_value,
    score_value,
    source_id,
    text_of,
    text_value,
)
from curate.labels.vocabulary import Choice, Source

# all: every two completions; best-vs-each: the top-scored against each other one; best-vs-worst: the top against
# the bottom; best-vs-random: the top against one other drawn by a hash of the prompt (UltraFeedback-binarized's rule)
PAIR_RULES = ("all", "best-vs-each", "best-vs-worst", "best-vs-random")
TEXT_FIELDS = ("response", "text", "completion", "content", "output")
SCORE_FIELDS = ("fine-grained_score", "overall_score", "score", "rating")  # of a completion object, first found


def derive_pairs(scores: list[float | None], rule: str, *, key: str) -> list[tuple[int, int]]:
    """The pairs (positions) ``rule`` takes from completions with ``scores`` (None: unscored). The best is the
    highest score, the first of equals; ``key`` (the prompt) seeds best-vs-random, so a file gives the same pairs
    every time."""
    n = len(scores)
    if rule == "all":
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    scored = [i for i, s in enumerate(scores) if s is not None]
    if len(scored) < 2:
        raise RowProblem(f"pair rule {rule} needs two scored completions; the row has {len(scored)} "
                         "(--pairs all takes every two)")
    best = max(scored, key=lambda i: (scores[i], -i))
    others = [i for i in scored if i != best]
    if rule == "best-vs-each":
        return [(best, i) for i in others]
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
    rule: str = "all"
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
        if not isinstance(items, list) or not items:
            raise RowProblem(f"wrong list shape: field '{key}' must be a non-empty list of completions")
        column = self._score_column(row)
        scores: list[float | None] = [None] * len(items)
        if column is not None:
            listed = cell(row, column)
            if not isinstance(listed, list) or len(listed) != len(items):
                raise RowProblem(f"wrong list shape: field '{column}' must be a list of {len(items)} scores, one per "
                                 f"completion in '{key}'")
            scores = [score_value(s, f"field '{column}' item {n}") for n, s in enumerate(listed, 1)]
        parsed = Parsed(prompt=Text(prompt))
        item_meta: list[dict[str, Any]] = []
        field = self.score or next((f for f in SCORE_FIELDS if any(isinstance(i, dict) and f in i for i in items)),
                                   None)
        for number, item in enumerate(items, 1):
            what = f"field '{key}' item {number}"
            if isinstance(item, str):
                parsed.completions.append(Text(text_of(item, what)))
                item_meta.append({})
                continue
            if not isinstance(item, dict):
                raise RowProblem(f"wrong list shape: {what} must be text or an object with a text field")
            text_key = next((f for f in TEXT_FIELDS if f in item), None)
            if text_key is None:
                raise RowProblem(f"wrong list shape: {what} has none of the text fields {', '.join(TEXT_FIELDS)}")
            model = text_value(item, "model") if item.get("model") is not None else None
            parsed.completions.append(Text(text_value(item, text_key), model=model))
            if column is None and field is not None:
                scores[number - 1] = score_value(item.get(field), f"{what} '{field}'")
            item_meta.append({k: meta_value(v, f"{what} '{k}'") for k, v in item.items()
                              if k not in (text_key, "model", field)})
        if self.id_column:
            parsed.source_key = f"{self.name}:{source_id(row, self.id_column)}"
        for position, score in enumerate(scores):
            if score is not None:
                parsed.judgments.append(Judged(Source.DATASET, completion=position, score=score,
                                               meta={"field": column or field, **item_meta[position]}))
        pairs = []
        for i, j in derive_pairs(scores, self.rule, key=prompt):
            if same_text(parsed.completions[i], parsed.completions[j]):
                parsed.notes.append("two completions of a prompt are the same text: that pair is left out")
                continue
            pairs.append((i, j))
            if scores[i] is not None and scores[j] is not None:
                choice = Choice.A if scores[i] > scores[j] else Choice.B if scores[i] < scores[j] else Choice.TIE
                parsed.judgments.append(Judged(Source.DATASET, choice=choice, pair=len(pairs) - 1,
                                               meta={"from": "scores", "rule": self.rule}))
        parsed.pairs = pairs
        return parsed
