"""``curate export``: the project's final labels as TRL-ready datasets (dpo, reward, sft, kto).

Rules, for every format at once:

- a **pair** whose final label (``curate.consensus``) is A or B -> a preference, chosen = the winner; a tie
  -> nothing (no preference and nothing said about quality); both bad -> no preference, and both completions
  are KTO negatives; a tied vote without a lead's decision -> nothing;
- a **rewrite** -> a preference (the rewrite over its original), an SFT target, a KTO positive, and its
  original a KTO negative;
- a **ranking** (groups of completions, best first) -> a preference for every two completions in different
  groups, the top group as SFT targets and KTO positives, the bottom group as KTO negatives.

SFT targets are therefore the winners of pairs, rewrites and the tops of rankings; an SFT target or KTO example
appears once per prompt and completion. Examples of a pair in the frozen test or calibration slice go to that
split's own file, never into train (rewrites and rankings come from selected items, never from slice pairs).
Rows are sorted and written with a fixed layout: the same database gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field, replace
from itertools import combinations
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from curate.consensus import final_labels
from curate.errors import CurateError
from curate.project import Project

FORMATS = ("dpo", "reward", "sft", "kto")
COLUMNS = {"dpo": ("prompt", "chosen", "rejected"), "reward": ("prompt", "chosen", "rejected"),
           "sft": ("prompt", "completion"), "kto": ("prompt", "completion", "label")}
LINEAGE = ("origin", "record_id", "pair_id", "round", "item_id", "annotators", "how", "instruction_versions")
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


def build_examples(project: Project, *, fmt: str, round_number: int | None = None,
                   min_agreement: float | None = None, required: bool = False) -> list[Example]:
    """The examples of format ``fmt`` from round ``round_number``'s judgments (else from every labelled pair,
    rewrite and ranking) plus the whole test and calibration slices, leaving out pair labels whose confidence
    is below ``min_agreement``; sorted. ``required``: none is an error that says what to do."""
    if fmt not in FORMATS:
        raise CurateError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if min_agreement is not None and not 0 <= min_agreement <= 1:
        raise CurateError(f"--min-agreement must be between 0 and 1, not {min_agreement}")
    labels = final_labels(project)
    with project.store.read() as conn:
        facts = _Facts.load(conn, round_number)
        if round_number is not None and facts.round_id is None:
            raise CurateError(f"there is no round {round_number} (curate status lists the rounds)")
        out = [*_pairs(labels, facts, fmt, min_agreement), *_rewrites(conn, facts, fmt),
               *_rankings(conn, facts, fmt)]
    unique: dict[tuple[Any, ...], Example] = {}
    for e in sorted(out, key=lambda e: (e.key(), -e.weight)):  # one row per example, its highest weight
        unique.setdefault(e.key(), e)
    if required and not unique:
        where = f"round {round_number}" if round_number is not None else "the project"
        raise CurateError(f"no {fmt} examples in {where}: nothing is labelled yet (annotate in curate serve, or "
                          "ingest data with labels)" + (f", or lower --min-agreement {min_agreement}"
                                                       if min_agreement else ""))
    return list(unique.values())


@dataclass
class _Facts:
    """What the example builders look up: slices, the round's items, who judged what."""

    round_id: int | None
    pair_split: dict[str, str]  # pair id -> test | calibration
    pair_items: dict[str, tuple[int, int]]  # pair id -> (round number, item id) of its latest rank item
    rounds: dict[int, int]  # round id -> number
    people: dict[str, dict[str, Any]]  # pair id -> annotators and instruction versions of its judgments
    parts: dict[str, tuple[str, str, str]]  # pair id -> (completion a, completion b, record id)
    only_pairs: set[str] | None  # the round's pairs (None: every pair)

    @classmethod
    def load(cls, conn: Connection, round_number: int | None) -> _Facts:
        from curate.agreement import SOURCES
        from curate.store.schema import Annotator, Item, Judgment, Pair, Round, Slice

        rounds = dict(conn.execute(select(Round.id, Round.number)).all())
        round_id = next((i for i, n in rounds.items() if n == round_number), None)
        pair_split = dict(conn.execute(select(Slice.pair_id, Slice.name)).all())
        parts = {p: (a, b, r) for p, a, b, r in conn.execute(select(Pair.id, Pair.a_id, Pair.b_id, Pair.record_id))}
        pair_items = {pair: (rounds[r], item) for pair, r, item in conn.execute(
            select(Item.pair_id, Item.round_id, Item.id).where(Item.pair_id.is_not(None), Item.kind == "rank")
            .order_by(Item.id))}
        people: dict[str, dict[str, Any]] = {}
        for pair, name, version in conn.execute(
                select(Judgment.pair_id, Annotator.name, Judgment.instruction_version)
                .join(Annotator, Annotator.id == Judgment.annotator_id)
                .where(Judgment.kind == "pair", Judgment.source.in_((*SOURCES, "adjudication")))
                .order_by(Judgment.pair_id, Annotator.name)):
            entry = people.setdefault(pair, {"annotators": [], "instruction_versions": []})
            if name not in entry["annotators"]:
                entry["annotators"].append(name)
            if version is not None and version not in entry["instruction_versions"]:
                entry["instruction_versions"].append(version)
        only = None if round_id is None else {p for p, (n, _) in pair_items.items() if n == round_number}
        return cls(round_id, pair_split, pair_items, rounds, people, parts, only)


def _pairs(labels: dict[str, Any], facts: _Facts, fmt: str, min_agreement: float | None) -> list[Example]:
    out = []
    for pair_id, label in labels.items():
        sliced = pair_id in facts.pair_split  # the frozen slices are whole in every export, whatever the round
        if label.choice not in ("a", "b", "both_bad") or (facts.only_pairs is not None and not sliced and
                                                          pair_id not in facts.only_pairs):
            continue
        if min_agreement is not None and label.confidence < min_agreement:
            continue
        a, b, record_id = facts.parts[pair_id]
        split = facts.pair_split.get(pair_id, "train")
        round_item = facts.pair_items.get(pair_id, (None, None))
        lineage = {"origin": "pair", "record_id": record_id, "pair_id": pair_id, "round": round_item[0],
                   "item_id": round_item[1], "how": label.how,
                   **facts.people.get(pair_id, {"annotators": [], "instruction_versions": []})}
        if label.choice == "both_bad":
            if fmt == "kto":
                out += [Example(record_id, split, c, label=False, weight=label.confidence, lineage=lineage)
                        for c in (a, b)]
            continue
        win, lose = (a, b) if label.choice == "a" else (b, a)
        if fmt in ("dpo", "reward"):
            out.append(Example(record_id, split, win, lose, weight=label.confidence, lineage=lineage))
        elif fmt == "sft":
            out.append(Example(record_id, split, win, weight=label.confidence, lineage=lineage))
        else:
            out += [Example(record_id, split, win, label=True, weight=label.confidence, lineage=lineage),
                    Example(record_id, split, lose, label=False, weight=label.confidence, lineage=lineage)]
    return out


def _rewrites(conn: Connection, facts: _Facts, fmt: str) -> list[Example]:
    from curate.store.schema import Annotator, Completion

    query = (select(Completion.id, Completion.parent_id, Completion.record_id, Completion.round_id, Annotator.name)
             .join(Annotator, Annotator.id == Completion.author_id, isouter=True)
             .where(Completion.origin == "rewrite", Completion.parent_id.is_not(None)))
    if facts.round_id is not None:
        query = query.where(Completion.round_id == facts.round_id)
    out = []
    for new, old, record_id, round_id, author in conn.execute(query.order_by(Completion.id)):
        lineage = {"origin": "rewrite", "record_id": record_id, "pair_id": None,
                   "round": facts.rounds.get(round_id), "item_id": None, "how": "rewrite",
                   "annotators": [author] if author else [], "instruction_versions": []}
        if fmt in ("dpo", "reward"):
            out.append(Example(record_id, "train", new, old, lineage=lineage))
        elif fmt == "sft":
            out.append(Example(record_id, "train", new, lineage=lineage))
        else:
            out += [Example(record_id, "train", new, label=True, lineage=lineage),
                    Example(record_id, "train", old, label=False, lineage=lineage)]
    return out


def _rankings(conn: Connection, facts: _Facts, fmt: str) -> list[Example]:
    from curate.store.schema import Annotator, Item, Judgment

    query = (select(Judgment.record_id, Judgment.ranking, Judgment.item_id, Item.round_id, Annotator.name,
                    Judgment.instruction_version)
             .join(Item, Item.id == Judgment.item_id, isouter=True)
             .join(Annotator, Annotator.id == Judgment.annotator_id, isouter=True)
             .where(Judgment.kind == "ranking", Judgment.ranking.is_not(None)))
    if facts.round_id is not None:
        query = query.where(Item.round_id == facts.round_id)
    out = []
    for record_id, groups, item_id, round_id, name, version in conn.execute(query.order_by(Judgment.id)):
        groups = [sorted(g) for g in groups if g]
        if len(groups) < 2:
            continue
        lineage = {"origin": "ranking", "record_id": record_id, "pair_id": None, "round": facts.rounds.get(round_id),
                   "item_id": item_id, "how": "ranking", "annotators": [name] if name else [],
                   "instruction_versions": [version] if version else []}
        if fmt in ("dpo", "reward"):
            out += [Example(record_id, "train", win, lose, lineage=lineage)
                    for better, worse in combinations(groups, 2) for win in better for lose in worse]
        elif fmt == "sft":
            out += [Example(record_id, "train", c, lineage=lineage) for c in groups[0]]
        else:
            out += [Example(record_id, "train", c, label=True, lineage=lineage) for c in groups[0]]
            out += [Example(record_id, "train", c, label=False, lineage=lineage) for c in groups[-1]]
    return out


def render(project: Project, examples: list[Example], fmt: str, *, lineage: bool = False, weights: bool = False,
           chat: bool | None = None) -> dict[str, list[dict[str, Any]]]:
    """Rows per split in TRL's columns for ``fmt``: standard (text) where every prompt and completion is plain
    text, conversational (lists of messages) where any has messages or ``chat`` says so (``curate train`` does
    for a model with a chat template). TRL joins a standard prompt and completion as they are and texts are
    stored stripped, so a standard completion starts with a space. SFT targets and KTO examples appear once per
    prompt and completion (the first in sort order, with the highest weight)."""
    from curate.store.schema import Completion, Record

    if fmt in ("sft", "kto"):
        best: dict[tuple[Any, ...], Example] = {}
        for e in examples:
            key = (e.split, e.record_id, e.chosen, e.label)
            if key not in best or e.weight > best[key].weight:
                best[key] = e if key not in best else replace(best[key], weight=e.weight)
        examples = sorted(best.values(), key=Example.key)
    completion_ids = {c for e in examples for c in (e.chosen, e.rejected) if c}
    with project.store.read() as conn:
        texts = {i: (t, m) for i, t, m in _chunked(conn, select(Completion.id, Completion.text, Completion.messages),
                                                  Completion.id, completion_ids)}
        prompts = {i: (t, m) for i, t, m in _chunked(conn, select(Record.id, Record.prompt, Record.messages),
                                                    Record.id, {e.record_id for e in examples})}
    if chat is None:
        chat = any(m is not None for _, m in (*texts.values(), *prompts.values()))

    def prompt_of(record_id: str) -> Any:
        text, messages = prompts[record_id]
        return (messages or [{"role": "user", "content": text}]) if chat else text

    def completion_of(completion_id: str) -> Any:
        text, messages = texts[completion_id]
        return (messages or [{"role": "assistant", "content": text}]) if chat else " " + text

    out: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for e in examples:
        row: dict[str, Any] = {"prompt": prompt_of(e.record_id)}
        if fmt in ("dpo", "reward"):
            row.update(chosen=completion_of(e.chosen), rejected=completion_of(e.rejected or ""))
        else:
            row["completion"] = completion_of(e.chosen)
            if fmt == "kto":
                row["label"] = bool(e.label)
        if weights:
            row["weight"] = round(e.weight, 6)
        if lineage:
            row.update({k: e.lineage.get(k) for k in LINEAGE})
        out[e.split].append(row)
    return {s: rows for s, rows in out.items() if rows}


def write_export(rows: dict[str, list[dict[str, Any]]], out: Path) -> dict[str, dict[str, Any]]:
    """Write each split (train to ``out``, the others beside it: ``x.test.jsonl``, or splits of one ``datasets``
    folder) as .jsonl, .parquet or a ``datasets`` folder (any other name); all or nothing. Per split: path,
    rows and sha256."""
    if not rows.get("train"):
        raise CurateError("nothing to train on: every labelled example is in the test or calibration slice")
    out = out.expanduser()
    if not out.parent.is_dir():
        raise CurateError(f"{out.parent}: no such folder")
    kind = {".jsonl": "jsonl", ".parquet": "parquet"}.get(out.suffix, "datasets")
    targets = {s: out if s == "train" or kind == "datasets" else out.with_name(f"{out.stem}.{s}{out.suffix}")
               for s in rows}
    staged = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        if kind == "datasets":
            from datasets import Dataset, DatasetDict

            DatasetDict({s: Dataset.from_list(r) for s, r in rows.items()}).save_to_disk(str(staged))
            written = {"datasets": staged}
        else:
            written = {s: staged.with_name(f"{staged.name}.{s}") for s in rows}
            for s, path in written.items():
                _write_file(rows[s], path, kind)
        if kind == "datasets":
            if out.exists():
                shutil.rmtree(out) if out.is_dir() else out.unlink()
            os.replace(staged, out)
        else:
            for s in SPLITS:  # a split file left from an earlier export of this name would mislead
                stale = out.with_name(f"{out.stem}.{s}{out.suffix}")
                if s != "train" and s not in rows and stale.exists():
                    stale.unlink()
            for s, path in written.items():
                os.replace(path, targets[s])
    finally:
        for leftover in out.parent.glob(f".{out.name}.partial-{os.getpid()}*"):
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    return {s: {"path": str(targets[s]) + (f" [{s}]" if kind == "datasets" else ""), "rows": len(r),
                "sha256": _digest(targets[s], s if kind == "datasets" else None)} for s, r in rows.items()}


def _write_file(rows: list[dict[str, Any]], path: Path, kind: str) -> None:
    if kind == "jsonl":
        with path.open("w", encoding="utf-8", newline="\n") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path, compression="zstd")


def _digest(path: Path, split: str | None) -> str:
    """The sha256 of a file (as ``sha256sum`` prints it), or of a ``datasets`` split folder's files and names."""
    if split is None:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    digest = hashlib.sha256()
    for f in sorted((path / split).rglob("*")):
        if f.is_file():
            digest.update(f.relative_to(path).as_posix().encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()


def _chunked(conn: Connection, query: Any, column: Any, ids: set[str], size: int = 500) -> list[Any]:
    ordered = sorted(ids)
    return [row for i in range(0, len(ordered), size) for row in conn.execute(query.where(
        column.in_(ordered[i:i + size])))]


def export(project: Project, *, fmt: str, out: Path, round_number: int | None = None,
           min_agreement: float | None = None, lineage: bool = False, weights: bool = False) -> dict[str, Any]:
    """Build, render and write one export, and record it (format, options, files and their hashes) in the
    audit log. Refuses an export with no examples."""
    from curate.store.engine import audit

    examples = build_examples(project, fmt=fmt, round_number=round_number, min_agreement=min_agreement,
                              required=True)
    files = write_export(render(project, examples, fmt, lineage=lineage, weights=weights), out)
    result = {"format": fmt, "round": round_number, "min_agreement": min_agreement, "lineage": lineage,
              "weights": weights, "splits": files}
    with project.store.write() as conn:
        audit(conn, "export", entity="export", entity_id=fmt, details=result)
    return result
