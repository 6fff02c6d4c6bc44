"""``ingest_files``: read, check every row, then write all files in one transaction (or nothing)."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from curate.errors import InputError
from curate.files import staged
from curate.ids import content_id, normalise_text
from curate.ingest.layouts import detect_layout, mapped_layout, parse_row, used_columns, with_pair_rule
from curate.ingest.readers import Source, detect_format, read_rows
from curate.ingest.results import FileReport, IngestReport
from curate.ingest.rows import Judged, Layout, Parsed, Text
from curate.ingest.values import RowProblem
from curate.progress import Progress, no_progress
from curate.project import Project
from curate.store import Connection, audit, pool

SWAP = {"a": "b", "b": "a"}


@dataclass
class ReadFile:
    source: Source
    layout: Layout
    sha256: str
    rows: list[tuple[str, Parsed]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # the first good row's

    def refuse_bad_rows(self, advice: str = "") -> None:
        """Raise the file's first bad row as a one-line error (``file:line: reason (advice)``), if it has one."""
        if self.rejects:
            first = self.rejects[0]
            raise InputError(f"{first['location']}: {first['reason']}" + (f" ({advice})" if advice else ""))


def ingest_files(project: Project, paths: Sequence[Path | str], *, file_format: str = "auto",
                 mapping: str | None = None, label_values: str | None = None, skip_bad: bool = False,
                 rejects_path: Path | None = None, labels: bool = True, pair_rule: str | None = None,
                 progress: Progress | None = None) -> IngestReport:
    """Add the records, pairs and judgments in ``paths`` to ``project`` (``labels=False``: the texts only,
    an unlabelled pool, e.g. to have a labelled file annotated again). ``pair_rule``: how rank-N rows become pairs
    (``ranked.PAIR_RULES``; default auto).

    All or nothing: a bad row anywhere raises InputError and writes nothing, unless ``skip_bad``,
    which ingests the good rows and writes the bad ones with their reasons to ``rejects_path``.
    """
    if not paths:
        raise InputError("no input files given")
    if label_values and not mapping:
        raise InputError("--label-values needs --map")
    if rejects_path and not skip_bad:
        raise InputError("--rejects needs --skip-bad")
    progress = progress or no_progress
    files = [read_file(Path(p), file_format, mapping, label_values, progress, pair_rule=pair_rule) for p in paths]
    problems = [f"{r['location']}: {r['reason']}" for f in files for r in f.rejects]
    for f in files if skip_bad else ():  # --skip-bad leaves bad rows out, never a whole file
        if f.rejects and not f.rows:
            raise InputError(f"{f.source.path}: every row is bad ({len(f.rejects)}; the first: "
                             f"{f.rejects[0]['location']}: {f.rejects[0]['reason']}); nothing was ingested", problems)
    if problems and not skip_bad:
        more = f" (and {len(problems) - 1} more bad rows)" if len(problems) > 1 else ""
        raise InputError(f"{problems[0]}{more}; nothing was ingested (--skip-bad ingests the good rows)", problems)
    target = (rejects_path or _default_rejects(project.root)) if problems else None
    with ExitStack() as stack:
        if target:  # written aside before the commit, renamed onto target after it: a bad path writes nothing
            _stage_rejects(stack, target, files)
        with project.store.write() as conn:
            reports = [_write_file(conn, f, labels=labels) for f in progress(files, "writing", len(files))]
    return IngestReport(files=reports, problems=problems, rejects_path=target)


def read_file(path: Path, file_format: str, mapping: str | None, label_values: str | None,
              progress: Progress, *, pair_rule: str | None = None) -> ReadFile:
    """Read and check every row of one file (nothing is written)."""
    source = detect_format(path, file_format)
    layout: Layout | None = None
    if mapping:
        layout = mapped_layout(mapping, label_values, annotator_prefix=f"{path.name.split('.')[0]}:",
                               pair_rule=pair_rule)
    parsed: list[tuple[str, Parsed]] = []
    rejects: list[dict[str, Any]] = []
    used: set[str] | None = None
    columns: list[str] = []
    for where, row, split in progress(read_rows(source), f"reading {path.name}", None):
        location = f"{path}:{where}"
        if isinstance(row, RowProblem):
            rejects.append({"location": location, "reason": str(row), "row": None})
            continue
        if used is None:
            layout = layout or with_pair_rule(detect_layout(row, str(path)), pair_rule)
            _check_columns(layout, row, path)
            used, columns = used_columns(layout, set(row)), list(row)
        try:
            found = parse_row(layout, row, used=used)
        except RowProblem as problem:
            rejects.append({"location": location, "reason": str(problem), "row": row})
            continue
        found.split = split
        parsed.append((location, found))
    if layout is None:
        if rejects:
            raise InputError(f"{rejects[0]['location']}: {rejects[0]['reason']} (no row of the file is readable)")
        raise InputError(f"{path}: the file holds no rows")
    return ReadFile(source=source, layout=layout, sha256=_sha256(path), rows=parsed, rejects=rejects,
                    columns=columns)


def _check_columns(layout: Layout, row: dict[str, Any], path: Path) -> None:
    """A ``--map`` that names a column the file lacks is an error about the file, not its rows."""
    for col in layout.required_columns():
        if col not in row:
            raise InputError(f"{path}: --map names column '{col}', which is not in the file "
                             f"(columns: {', '.join(row)})")


def _sha256(path: Path) -> str:
    if not path.is_file():  # a folder, or a Hub dataset id
        return ""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class TextIds:
    """Content ids and stored (normalised) forms of texts, computed once per distinct text."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str], tuple[str, str]] = {}

    def __call__(self, kind: str, owner: str, text: Text) -> tuple[str, str]:
        if text.messages is not None and not text.transcript:
            return content_id(kind, owner, text.messages), normalise_text(text.text)
        key = (kind, owner, text.text)
        found = self._seen.get(key)
        if found is None:
            normal = normalise_text(text.text)
            found = self._seen[key] = (content_id(kind, owner, normal), normal)
        return found


def known_choices(paths: Sequence[Path | str], *, file_format: str = "auto", mapping: str | None = None,
                  label_values: str | None = None, pair_rule: str | None = None) -> dict[str, list[str]]:
    """The pair choices (``a``/``b`` as the store orders the pair, ``tie``, ``both_bad``) the files record, by pair
    id as ingest makes it: each annotator's vote in file order, or the gold label where no one voted. An
    answer key, e.g. for simulated annotators on a pool ingested with ``labels=False``."""
    choices: dict[str, list[str]] = {}
    for path in paths:
        read = read_file(Path(path), file_format, mapping, label_values, no_progress, pair_rule=pair_rule)
        read.refuse_bad_rows()
        text_id = TextIds()
        for _, row in read.rows:
            found = row_ids(text_id, row)
            for number, (pair, swapped) in enumerate(found.pairs):
                pair_votes = [j for j in row.judgments if j.completion is None and j.choice is not None
                              and j.pair == number]
                crowd = [j for j in pair_votes if j.source != "gold"] or pair_votes
                choices.setdefault(pair, []).extend(SWAP.get(j.choice, j.choice) if swapped else j.choice
                                                    for j in crowd)
    return choices


@dataclass
class RowIds:
    record: tuple[str, str]  # id, stored prompt
    completions: list[tuple[str, str]]  # id, stored text
    pairs: list[tuple[str, bool]]  # each pair's id; whether the store's A/B order (by completion id) swaps the row's


def row_ids(text_id: TextIds, row: Parsed) -> RowIds:
    record = text_id("record", "", row.prompt)
    completions = [text_id("completion", record[0], text) for text in row.completions]
    pairs = []
    for i, j in row.pair_positions:
        one, two = completions[i][0], completions[j][0]
        pairs.append((content_id("pair", record[0], min(one, two), max(one, two), row.source_key or ""), two < one))
    return RowIds(record, completions, pairs)


def judgment_of(found: RowIds, judged: Judged) -> tuple[str, str | None, str | None]:
    """A row's judgment as the store keeps it: its content id, the pair it is on (None for a rating) and its
    choice in the store's A/B order."""
    pair_id, swapped = found.pairs[judged.pair] if judged.completion is None else (None, False)
    choice = SWAP.get(judged.choice, judged.choice) if swapped and judged.choice else judged.choice
    target = pair_id if judged.completion is None else found.completions[judged.completion][0]
    value = choice if choice is not None else judged.label if judged.label is not None else judged.score
    return content_id("judgment", target, judged.source, judged.annotator or "", value), pair_id, choice


def _write_file(conn: Connection, read: ReadFile, *, labels: bool = True) -> FileReport:
    path = read.source.path
    report = FileReport(path=str(path), file_format=read.source.file_format, layout=read.layout.name,
                        rows=len(read.rows) + len(read.rejects), bad_rows=len(read.rejects))
    where = read.source.where
    batch_id = pool.add_batch(conn, path=where, sha256=read.sha256,
                              file_format=read.source.file_format, layout=read.layout.name)
    records: dict[str, dict[str, Any]] = {}
    completions: dict[str, dict[str, Any]] = {}
    pairs: dict[str, dict[str, Any]] = {}
    judgments: dict[str, dict[str, Any]] = {}
    seen: set[tuple[Any, ...]] = set()
    names = sorted({j.annotator for _, row in read.rows for j in row.judgments if j.annotator}) if labels else []
    annotator_ids = pool.add_imported_annotators(conn, names=names)
    text_id = TextIds()
    for location, row in read.rows:
        found = row_ids(text_id, row)
        record_id, prompt = found.record
        ids = [c[0] for c in found.completions]
        records.setdefault(record_id, {
            "id": record_id, "prompt": prompt, "messages": row.prompt.messages, "meta": row.meta,
            "batch_id": batch_id})
        for (completion_id, normal), text in zip(found.completions, row.completions, strict=True):
            completions.setdefault(completion_id, {
                "id": completion_id, "record_id": record_id, "text": normal,
                "messages": text.messages, "model": text.model, "origin": "import", "batch_id": batch_id})
        pair_meta = {**row.meta, "split": row.split} if row.split else row.meta
        for (pair_id, _), (i, j) in zip(found.pairs, row.pair_positions, strict=True):
            first = pairs.setdefault(pair_id, {
                "id": pair_id, "record_id": record_id, "a_id": min(ids[i], ids[j]), "b_id": max(ids[i], ids[j]),
                "source_key": row.source_key, "meta": pair_meta, "batch_id": batch_id})
            if first["meta"].get("split") != row.split:
                report.note(f"a pair is in splits {first['meta'].get('split')} and {row.split}: kept in "
                            f"{first['meta'].get('split')}, the first read", location)
        judgment_ids = []
        for j in row.judgments if labels else ():
            judgment_id, pair_id, choice = judgment_of(found, j)
            judgment_ids.append(judgment_id)
            judgments.setdefault(judgment_id, {
                "id": judgment_id, "kind": "pair" if j.completion is None else "rating", "source": j.source,
                "record_id": record_id, "pair_id": pair_id,
                "completion_id": None if j.completion is None else ids[j.completion],
                "annotator_id": annotator_ids.get(j.annotator), "choice": choice, "label": j.label, "reason": j.reason,
                "meta": j.meta if j.score is None else {"score": j.score, **j.meta}, "batch_id": batch_id})
        fingerprint = (record_id, tuple(ids), tuple(found.pairs), tuple(judgment_ids))
        if fingerprint in seen:
            report.duplicate_rows += 1
        seen.add(fingerprint)
        for note in row.notes:
            report.note(note, location)

    report.records = pool.add_records(conn, list(records.values()))
    report.completions = pool.add_completions(conn, list(completions.values()))
    report.pairs = pool.add_pairs(conn, list(pairs.values()))
    report.pairs_present = len(pairs) - report.pairs
    report.judgments.update(pool.add_judgments(conn, list(judgments.values())))
    counts = {"rows": report.rows, "records": report.records, "completions": report.completions,
              "pairs": report.pairs, "judgments": dict(report.judgments)}
    if report.added == 0:
        pool.drop_batch(conn, batch_id=batch_id)
    else:
        pool.set_batch_counts(conn, batch_id=batch_id, counts=counts)
        audit(conn, "ingest", entity="ingest_batch", entity_id=str(batch_id),
              details={"path": where, "sha256": read.sha256, "layout": read.layout.name,
                       "labels_imported": labels, **counts})
    return report


def _default_rejects(root: Path) -> Path:
    """A new name per run, even for runs in the same second."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return root / "rejects" / f"ingest-{stamp}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"


def _stage_rejects(stack: ExitStack, path: Path, files: list[ReadFile]) -> None:
    """Bad rows with their reasons, one JSON object per line, in a temp file of this run that ``stack`` renames
    onto ``path`` when it closes without an error (and removes otherwise)."""
    try:
        tmp = stack.enter_context(staged(path))
        # a lone surrogate in a row is written as its JSON escape (\udXXX): the file stays valid UTF-8 and JSON
        with open(tmp, "w", encoding="utf-8", errors="backslashreplace") as fh:
            for f in files:
                for reject in f.rejects:
                    fh.write(json.dumps(reject, ensure_ascii=False, default=str) + "\n")
    except OSError as err:
        raise InputError(f"{path}: cannot write the rejects file ({err.strerror or err})") from None
