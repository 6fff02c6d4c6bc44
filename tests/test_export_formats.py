"""The export-format contract, one parametrised test per rule over every registered format: what a format makes
of a preference, a ranking and a both-bad pair never says a worse completion is better, and its rows have
exactly the columns it declares (the end-to-end exports are in test_export.py and test_labels_contract.py)."""

from __future__ import annotations

import pytest

from curate.errors import CurateError
from curate.export.formats import FORMATS, Evidence, Example, ExportFormat, export_format
from curate.vocabulary import TrainingKind

EVIDENCE = Evidence("record-1", split="test", weight=0.75, lineage={"origin": "pair", "pair_id": "p1"})
RANKING = [["c1", "c2"], ["c3"], ["c4", "c5"]]  # best first


def says(e: Example) -> tuple[str, str | None, str]:
    """What an example claims: (better, worse, kind); a KTO negative claims its completion is bad."""
    if e.rejected is not None:
        return e.chosen, e.rejected, "preference"
    return (e.chosen, None, "good") if e.label in (None, True) else (e.chosen, None, "bad")


def test_the_registry_holds_every_training_kind_and_refuses_others():
    assert list(FORMATS) == [str(k) for k in TrainingKind]
    assert all(export_format(str(k)).name == k for k in TrainingKind)
    with pytest.raises(CurateError, match="unknown export format 'orpo': choose one of dpo, reward, sft, kto"):
        export_format("orpo")


@pytest.mark.parametrize("fmt", FORMATS.values(), ids=list(FORMATS))
def test_a_preference_keeps_its_winner_and_its_evidence(fmt: ExportFormat):
    examples = fmt.preference(EVIDENCE, "win", "lose")
    assert examples
    for e in examples:
        assert (e.record_id, e.split, e.weight, e.lineage) == ("record-1", "test", 0.75, EVIDENCE.lineage)
        assert says(e) in {("win", "lose", "preference"), ("win", None, "good"), ("lose", None, "bad")}
    assert any(says(e)[0] == "win" for e in examples)


@pytest.mark.parametrize("fmt", FORMATS.values(), ids=list(FORMATS))
def test_a_ranking_never_contradicts_its_order(fmt: ExportFormat):
    group = {c: i for i, g in enumerate(RANKING) for c in g}
    examples = fmt.ranking(EVIDENCE, RANKING)
    assert examples
    for e in examples:
        better, worse, kind = says(e)
        if kind == "preference":
            assert group[better] < group[worse]
        elif kind == "good":
            assert group[better] == 0
        else:
            assert group[better] == len(RANKING) - 1
    if fmt.columns == ("prompt", "chosen", "rejected"):  # every two completions in different groups
        assert len(examples) == 2 * 1 + 2 * 2 + 1 * 2


@pytest.mark.parametrize("fmt", FORMATS.values(), ids=list(FORMATS))
def test_both_bad_gives_negatives_only_where_the_format_keeps_them(fmt: ExportFormat):
    examples = fmt.both_bad(EVIDENCE, ["a", "b"])
    assert bool(examples) == fmt.keeps_both_bad
    assert all(says(e) in {("a", None, "bad"), ("b", None, "bad")} for e in examples)


@pytest.mark.parametrize("fmt", FORMATS.values(), ids=list(FORMATS))
def test_rows_have_exactly_the_declared_columns(fmt: ExportFormat):
    examples = [*fmt.preference(EVIDENCE, "win", "lose"), *fmt.ranking(EVIDENCE, RANKING),
                *fmt.both_bad(EVIDENCE, ["a", "b"])]
    for e in examples:
        row = {"prompt": "P", **fmt.row(e, lambda c: f"text of {c}")}
        assert tuple(row) == fmt.columns
        assert row[fmt.columns[1]] == f"text of {e.chosen}"
    assert fmt.once_per_completion == ("rejected" not in fmt.columns)
