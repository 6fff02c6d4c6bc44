"""The examples of an export, before rendering: which pairs, rewrites and rankings give which rows, with
their weights and lineage, and which pairs were left out and why (the rules are in ``curate.export``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from curate.errors import CurateError
from curate.export.formats import Evidence, Example, ExportFormat, export_format
from curate.labels.rule import FinalLabel, final_labels
from curate.labels.vocabulary import Choice, How, Source
from curate.labels.votes import read_judgments
from curate.project import Project
from curate.store import Connection, exports, judgments, pool, rounds
from curate.vocabulary import ItemKind

LEFT_OUT = {  # why a labelled or selected pair gave no example, as the export reports it
    "tied": "tied among the people: waiting for a lead (curate adjudicate)",
    "imported": "labelled only by the imported data (--with-imported adds them)",
    "agreement": "agreement below --min-agreement",
    "tie": "final label tie: no preference",
    "both_bad": "final label both bad: no preference (KTO negatives only)",
    "unjudged": "selected in the round and not judged yet",
}


@dataclass(frozen=True)
class Examples:
    """What an export holds (sorted, one row per example with its highest weight) and how many pairs were left
    out, by reason (keys of ``LEFT_OUT``)."""

    rows: list[Example]
    left_out: dict[str, int]


def build_examples(project: Project, *, fmt: str, round_number: int | None = None,
                   min_agreement: float | None = None, with_imported: bool = False,
                   required: bool = False) -> Examples:
    """The examples of format ``fmt`` from round ``round_number``'s judgments (else from every pair labelled in
    the project, and ``with_imported`` every pair labelled by imported data too, every rewrite and ranking),
    plus the whole test and calibration slices (their best answers, imported ones included: they are what
    every model is measured on); pair labels whose agreement is below ``min_agreement`` left out.
    ``required``: no train example is an error that says why."""
    form = export_format(fmt)
    if min_agreement is not None and not 0 <= min_agreement <= 1:
        raise CurateError(f"--min-agreement must be between 0 and 1, not {min_agreement}")
    if with_imported and round_number is not None:
        raise CurateError("--with-imported adds pairs nobody judged in the project, and a round export holds only "
                          "that round's judgments: use one or the other")
    with project.store.read() as conn:
        facts = _Facts.load(conn, round_number)
        if round_number is not None:
            _require_judgments(conn, round_number, facts.items)
        votes = read_judgments(conn)
        whole = final_labels(project, judgments=votes)
        labels = whole if round_number is None else final_labels(project, round_number=round_number,
                                                                 judgments=votes)
        left_out: Counter[str] = Counter()
        out = [*_pairs(labels, whole, facts, form, min_agreement, with_imported, left_out),
               *_rewrites(conn, facts, form), *_rankings(conn, facts, form)]
    unique: dict[tuple[Any, ...], Example] = {}
    for e in sorted(out, key=lambda e: (e.key(), -e.weight)):  # one row per example, its highest weight
        unique.setdefault(e.key(), e)
    if required and not any(e.split == "train" for e in unique.values()):
        where = f"round {round_number}" if round_number is not None else "the project"
        why = "; ".join(f"{n} {LEFT_OUT[k]}" for k, n in sorted(left_out.items()))
        raise CurateError(f"no {fmt} examples to train on in {where}" + (f": {why}" if why else (
            ": every labelled example is in the test or calibration slice" if unique else
            ": nothing is labelled yet (annotate in curate serve, or ingest data with labels)")))
    return Examples(list(unique.values()), dict(sorted(left_out.items())))


def _require_judgments(conn: Connection, round_number: int, items: int) -> None:
    """Refuse to export a round that has no judgment of its own (its ``items`` all unjudged)."""
    if not judgments.judged_items(conn, round_number=round_number):
        raise CurateError(f"round {round_number} has no judgments yet: 0 of its {items} items are judged (annotate "
                          "them in curate serve; imported labels are not a round's judgments)")


@dataclass
class _Facts:
    """What the example builders look up: slices, the round's items, who judged what."""

    number: int | None  # the round exported (None: every round)
    items: int  # the round's items, of every kind (0 without a round)
    pair_split: dict[str, str]  # pair id -> test | calibration
    pair_items: dict[str, tuple[int, int]]  # pair id -> (round number, item id) of its rank item (the round's)
    people: dict[tuple[str, str], dict[str, list[Any]]]  # (pair, source) -> annotators, instruction versions
    parts: dict[str, tuple[str, str, str]]  # pair id -> (completion a, completion b, record id)
    only_pairs: set[str] | None  # the round's pairs (None: every pair)

    @classmethod
    def load(cls, conn: Connection, round_number: int | None) -> _Facts:
        if round_number is not None and rounds.round_id(conn, number=round_number) is None:
            raise CurateError(f"there is no round {round_number} (curate status lists the rounds)")
        pair_split = rounds.slices(conn)
        parts = {p: (a, b, r) for p, r, a, b in pool.pairs(conn)}
        items = judgments.round_items(conn)
        ranked = sorted((i for i in items if i.pair_id is not None and i.kind == ItemKind.RANK),
                        key=lambda i: (i.round == round_number, i.item_id))
        pair_items = {i.pair_id: (i.round, i.item_id) for i in ranked}  # the latest, or the one in the round exported
        people: dict[tuple[str, str], dict[str, list[Any]]] = {}
        for pair, source, name, version, judged_in in exports.pair_judges(conn):
            elsewhere = round_number is not None and judged_in != round_number  # judged outside the round exported
            if source == Source.APP and elsewhere and pair not in pair_split:
                continue
            entry = people.setdefault((pair, source), {"annotators": [], "instruction_versions": []})
            if name not in entry["annotators"]:
                entry["annotators"].append(name)
            if version is not None and version not in entry["instruction_versions"]:
                entry["instruction_versions"].append(version)
        only = None if round_number is None else {i.pair_id for i in ranked if i.round == round_number}
        return cls(round_number, sum(i.round == round_number for i in items), pair_split, pair_items, people, parts,
                   only)

    def who(self, pair_id: str, label: FinalLabel) -> dict[str, list[Any]]:
        """The annotators and instruction versions behind ``label``: the deciding people, and the lead (after the
        people who voted on the pair: in the project, else an imported crowd)."""
        voters = Source.APP if (pair_id, Source.APP) in self.people else Source.CROWD
        sources = (voters, Source.ADJUDICATION) if label.source == Source.ADJUDICATION else (label.source,)
        out: dict[str, list[Any]] = {"annotators": [], "instruction_versions": []}
        for source in sources:
            for key, values in self.people.get((pair_id, source), {}).items():
                out[key] += [v for v in values if v not in out[key]]
        return out


def _pairs(labels: dict[str, FinalLabel], whole: dict[str, FinalLabel], facts: _Facts, form: ExportFormat,
           min_agreement: float | None, with_imported: bool, left_out: Counter[str]) -> list[Example]:
    """The examples of the pairs in scope (the round's and the slices', or every labelled pair), counting in
    ``left_out`` those that give none. The frozen slices are whole in every export, whatever the round, with
    their best answers (imported ones included); a round's own pairs need a judgment made in that round."""
    selected = facts.only_pairs is not None
    scope = sorted(facts.only_pairs | set(facts.pair_split) if selected else labels)
    out = []
    for pair_id in scope:
        sliced = pair_id in facts.pair_split
        label = (whole if sliced else labels).get(pair_id)
        reason = _left_out(label, form, min_agreement, imported=sliced or with_imported,
                           selected=selected and not sliced)
        if reason:
            left_out[reason] += 1
            continue
        if label is None:
            continue
        a, b, record_id = facts.parts[pair_id]
        split = facts.pair_split.get(pair_id, "train")
        round_item = facts.pair_items.get(pair_id, (None, None))
        lineage = {"origin": "pair", "record_id": record_id, "pair_id": pair_id, "round": round_item[0],
                   "item_id": round_item[1], "source": str(label.source), "how": str(label.how),
                   **facts.who(pair_id, label)}
        evidence = Evidence(record_id, split, label.agreement, lineage)
        if label.choice == Choice.BOTH_BAD:
            out += form.both_bad(evidence, (a, b))
        else:
            out += form.preference(evidence, *((a, b) if label.choice == Choice.A else (b, a)))
    return out


def _left_out(label: FinalLabel | None, form: ExportFormat, min_agreement: float | None, *, imported: bool,
              selected: bool) -> str | None:
    """Why ``label`` gives no example of ``form`` (a key of ``LEFT_OUT``), or None where it gives one.
    ``imported``: a label that came with the data may give one; ``selected``: the pair was chosen in the round
    exported, which has to have judged it."""
    if label is None or (selected and label.imported):
        return "unjudged" if selected else None
    if label.imported and not imported:
        return "imported"
    if label.how == How.TIED:
        return "tied"
    if label.choice == Choice.TIE:
        return "tie"
    if label.choice == Choice.BOTH_BAD and not form.keeps_both_bad:
        return "both_bad"
    if min_agreement is not None and label.agreement < min_agreement:
        return "agreement"
    return None


def _rewrites(conn: Connection, facts: _Facts, form: ExportFormat) -> list[Example]:
    out = []
    for new, old, record_id, number, author in exports.rewrites(conn, round_number=facts.number):
        lineage = {"origin": "rewrite", "record_id": record_id, "pair_id": None, "round": number, "item_id": None,
                   "how": "rewrite", "annotators": [author] if author else [], "instruction_versions": []}
        out += form.preference(Evidence(record_id, lineage=lineage), new, old)
    return out


def _rankings(conn: Connection, facts: _Facts, form: ExportFormat) -> list[Example]:
    out = []
    for record_id, groups, item_id, number, name, version in exports.rankings(conn, round_number=facts.number):
        groups = [sorted(g) for g in groups if g]
        if len(groups) < 2:
            continue
        lineage = {"origin": "ranking", "record_id": record_id, "pair_id": None, "round": number,
                   "item_id": item_id, "how": "ranking", "annotators": [name] if name else [],
                   "instruction_versions": [version] if version else []}
        out += form.ranking(Evidence(record_id, lineage=lineage), groups)
    return out
