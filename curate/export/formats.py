"""The export formats as one contract: what each TRL dataset kind makes of a preference, a pair both
completions of which are bad, and a ranking, and the columns of its rows. ``FORMATS`` is the registry; a new
format is one small class here (and a recipe kind in ``curate.vocabulary.TrainingKind``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, ClassVar

from curate.errors import CurateError
from curate.vocabulary import TrainingKind

SPLITS = ("train", "test", "calibration")


@dataclass(frozen=True)
class Example:
    """One row before rendering: completion ids (``chosen``/``rejected``, or ``completion`` with ``label``
    for KTO), the weight and the lineage."""

    record_id: str
    split: str
    chosen: str
    rejected: str | None = None
    label: bool | None = None
    weight: float = 1.0
    lineage: dict[str, Any] = field(default_factory=dict)

    def key(self) -> tuple[Any, ...]:
        return (SPLITS.index(self.split), self.record_id, self.chosen, self.rejected or "", self.label is False,
                self.lineage.get("origin", ""), self.lineage.get("pair_id") or "")


@dataclass(frozen=True)
class Evidence:
    """Where examples come from: a prompt (record), the split they go to, their weight and lineage."""

    record_id: str
    split: str = "train"
    weight: float = 1.0
    lineage: dict[str, Any] = field(default_factory=dict)

    def example(self, chosen: str, rejected: str | None = None, label: bool | None = None) -> Example:
        return Example(self.record_id, self.split, chosen, rejected, label, self.weight, self.lineage)


class ExportFormat:
    """One format: its examples from each kind of evidence, and its rows in TRL's columns."""

    name: ClassVar[TrainingKind]
    columns: ClassVar[tuple[str, ...]]  # the row's columns, before weight and lineage
    once_per_completion: ClassVar[bool] = False  # an example per prompt and completion (not per pair)
    keeps_both_bad: ClassVar[bool] = False  # a pair judged both bad gives examples

    def preference(self, ev: Evidence, win: str, lose: str) -> list[Example]:
        """Examples of ``win`` judged better than ``lose``."""
        raise NotImplementedError

    def both_bad(self, ev: Evidence, completions: Sequence[str]) -> list[Example]:
        """Examples of completions all judged bad (only formats that ``keeps_both_bad``)."""
        return []

    def ranking(self, ev: Evidence, groups: Sequence[Sequence[str]]) -> list[Example]:
        """Examples of a ranking: groups of completions, best first (two groups at least)."""
        raise NotImplementedError

    def row(self, e: Example, completion: Callable[[str], Any]) -> dict[str, Any]:
        """The format's columns of ``e`` after its prompt; ``completion`` renders a completion id."""
        raise NotImplementedError


class Preference(ExportFormat):
    """``prompt, chosen, rejected``: every pair of completions one is judged better than the other."""

    columns = ("prompt", "chosen", "rejected")

    def __init__(self, name: TrainingKind) -> None:
        self.name = name  # type: ignore[misc]  # dpo and reward share the layout

    def preference(self, ev: Evidence, win: str, lose: str) -> list[Example]:
        return [ev.example(win, lose)]

    def ranking(self, ev: Evidence, groups: Sequence[Sequence[str]]) -> list[Example]:
        return [ev.example(w, lo) for better, worse in combinations(groups, 2) for w in better for lo in worse]

    def row(self, e: Example, completion: Callable[[str], Any]) -> dict[str, Any]:
        return {"chosen": completion(e.chosen), "rejected": completion(e.rejected or "")}


class Sft(ExportFormat):
    """``prompt, completion``: the winners as targets (the top group of a ranking)."""

    name = TrainingKind.SFT
    columns = ("prompt", "completion")
    once_per_completion = True

    def preference(self, ev: Evidence, win: str, lose: str) -> list[Example]:
        return [ev.example(win)]

    def ranking(self, ev: Evidence, groups: Sequence[Sequence[str]]) -> list[Example]:
        return [ev.example(c) for c in groups[0]]

    def row(self, e: Example, completion: Callable[[str], Any]) -> dict[str, Any]:
        return {"completion": completion(e.chosen)}


class Kto(ExportFormat):
    """``prompt, completion, label``: winners and a ranking's top as positives, losers, a ranking's bottom and
    both-bad completions as negatives."""

    name = TrainingKind.KTO
    columns = ("prompt", "completion", "label")
    once_per_completion = True
    keeps_both_bad = True

    def preference(self, ev: Evidence, win: str, lose: str) -> list[Example]:
        return [ev.example(win, label=True), ev.example(lose, label=False)]

    def both_bad(self, ev: Evidence, completions: Sequence[str]) -> list[Example]:
        return [ev.example(c, label=False) for c in completions]

    def ranking(self, ev: Evidence, groups: Sequence[Sequence[str]]) -> list[Example]:
        return [*(ev.example(c, label=True) for c in groups[0]), *(ev.example(c, label=False) for c in groups[-1])]

    def row(self, e: Example, completion: Callable[[str], Any]) -> dict[str, Any]:
        return {"completion": completion(e.chosen), "label": bool(e.label)}


FORMATS: dict[str, ExportFormat] = {f.name: f for f in (Preference(TrainingKind.DPO),
                                                           Preference(TrainingKind.REWARD), Sft(), Kto())}


def export_format(name: str) -> ExportFormat:
    """The registered format ``name``; an unknown name is a one-line error listing the formats."""
    if name not in FORMATS:
        raise CurateError(f"unknown export format {name!r}: choose one of {', '.join(FORMATS)}")
    return FORMATS[name]
