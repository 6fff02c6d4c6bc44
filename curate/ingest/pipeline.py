"""``ingest_files``: read and check every row (spooled to disk a chunk at a time), then write all files in one
transaction (or nothing)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import secrets
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from curate.errors import InputError
from curate.files import staged
from curate.ids import content_id, normalise_text, text_key
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
    which ingests the good rows and writes the bad ones with their reasons to ``rejects_path``. Files are read
    as a stream and their parsed rows spooled to disk ``CHUNK_ROWS`` at a time, outside the store's write lock
    (a download or a slow parse never blocks the annotation app); then the chunks are written in one
    transaction. Memory follows the chunk, the bad rows and a 16-byte digest per distinct row and pair.
    """
    if not paths:
        raise InputError("no input files given")
    if label_values and not mapping:
        raise InputError("--label-values needs --map")
    if rejects_path and not skip_bad:
        raise InputError("--rejects needs --skip-bad")
    progress = progress or no_progress
    with ExitStack() as stack:
        rejects = _Rejects(stack, (lambda: rejects_path or _default_rejects(project.root)) if skip_bad else None)
        spool = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=".ingest-", dir=project.root)))
        spooled = []
        for number, path in enumerate(paths):
            rows = FileRows(Path(path), file_format, mapping, label_values, pair_rule=pair_rule)
            spooled.append((rows, _spool(rows, spool / f"{number}.pickle", rejects, progress)))
            if skip_bad and rows.bad and not rows.good:  # --skip-bad leaves bad rows out, never a whole file
                raise InputError(f"{path}: every row is bad ({rows.bad}; the first: {rows.first_problem}); "
                                 "nothing was ingested", rejects.problems)
        if rejects.problems and not skip_bad:
            more = f" (and {len(rejects.problems) - 1} more bad rows)" if len(rejects.problems) > 1 else ""
            raise InputError(f"{rejects.problems[0]}{more}; nothing was ingested (--skip-bad ingests the good "
                             "rows)", rejects.problems)
        with project.store.write() as conn:  # one transaction: an error anywhere rolls every file back
            reports = [_write_file(conn, rows, chunks, labels=labels, progress=progress) for rows, chunks in spooled]
    return IngestReport(files=reports, problems=rejects.problems, rejects_path=rejects.path)


class FileRows:
    """The rows of one file, read as a stream and checked one at a time: iterating yields ``(location, Parsed)``
    for a good row and ``(location, reject)`` for a bad one (a dict: location, reason, row)."""

    def __init__(self, path: Path, file_format: str, mapping: str | None, label_values: str | None, *,
                 pair_rule: str | None = None) -> None:
        self.path, self.pair_rule = path, pair_rule
        self.source = detect_format(path, file_format)
        self.layout: Layout | None = None
        if mapping:
            self.layout = mapped_layout(mapping, label_values, annotator_prefix=f"{path.name.split('.')[0]}:",
                                        pair_rule=pair_rule)
        self.columns: list[str] = []  # the first good row's
        self.good = self.bad = 0
        self.first_problem = ""

    def __iter__(self) -> Iterator[tuple[str, Parsed | dict[str, Any]]]:
        used: set[str] | None = None
        for where, row, split in read_rows(self.source):
            location = f"{self.path}:{where}"
            if isinstance(row, RowProblem):
                yield location, self._reject(location, row, None)
                continue
            if used is None:
                self.layout = self.layout or with_pair_rule(detect_layout(row, str(self.path)), self.pair_rule)
                _check_columns(self.layout, row, self.path)
                used, self.columns = used_columns(self.layout, set(row)), list(row)
            try:
                found = parse_row(self.layout, row, used=used)
            except RowProblem as problem:
                yield location, self._reject(location, problem, row)
                continue
            found.split = split
            self.good += 1
            yield location, found
        if self.layout is None:
            if self.bad:
                raise InputError(f"{self.first_problem} (no row of the file is readable)")
            raise InputError(f"{self.path}: the file holds no rows")

    def _reject(self, location: str, problem: RowProblem, row: dict[str, Any] | None) -> dict[str, Any]:
        self.bad += 1
        self.first_problem = self.first_problem or f"{location}: {problem}"
        return {"location": location, "reason": str(problem), "row": row}


def read_file(path: Path, file_format: str, mapping: str | None, label_values: str | None,
              progress: Progress, *, pair_rule: str | None = None) -> ReadFile:
    """Read and check every row of one file into memory (nothing is written; ``ingest_files`` streams instead)."""
    rows = FileRows(path, file_format, mapping, label_values, pair_rule=pair_rule)
    parsed: list[tuple[str, Parsed]] = []
    rejects: list[dict[str, Any]] = []
    for location, found in progress(rows, f"reading {path.name}", None):
        if isinstance(found, Parsed):
            parsed.append((location, found))
        else:
            rejects.append(found)
    assert rows.layout is not None  # iterating raised otherwise
    return ReadFile(source=rows.source, layout=rows.layout, sha256=_sha256(path), rows=parsed, rejects=rejects,
                    columns=rows.columns)


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


CHUNK_ROWS = 20_000  # rows parsed, then written, together: what ingest holds in memory at once


def _spool(rows: FileRows, path: Path, rejects: _Rejects, progress: Progress) -> Path:
    """Read and check every row of ``rows``: the good ones pickled to ``path`` ``CHUNK_ROWS`` at a time (a file of
    this run, read back by ``_chunks``), the bad ones handed to ``rejects``."""
    chunk: list[tuple[str, Parsed]] = []
    with path.open("wb") as fh:
        for location, found in progress(rows, f"reading {rows.path.name}", None):
            if not isinstance(found, Parsed):
                rejects.add(found)
                continue
            chunk.append((location, found))
            if len(chunk) == CHUNK_ROWS:
                pickle.dump(chunk, fh, protocol=pickle.HIGHEST_PROTOCOL)
                chunk = []
        pickle.dump(chunk, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def _chunks(path: Path) -> Iterator[list[tuple[str, Parsed]]]:
    with path.open("rb") as fh:
        while True:
            try:
                yield pickle.load(fh)
            except EOFError:
                return


def _write_file(conn: Connection, rows: FileRows, spooled: Path, *, labels: bool,
                progress: Progress) -> FileReport:
    """Write the spooled good rows of ``rows``, a chunk at a time, as one ingest batch."""
    writer = _FileWriter(conn, rows, labels=labels)
    chunks = -(-rows.good // CHUNK_ROWS) or 1
    for chunk in progress(_chunks(spooled), f"writing {rows.path.name}", chunks):
        writer.write(chunk)
    return writer.finish()


class _FileWriter:
    """One file's ingest batch, written a chunk of rows at a time (ids already in the store are left alone)."""

    def __init__(self, conn: Connection, rows: FileRows, *, labels: bool) -> None:
        assert rows.layout is not None  # known from the first good row on
        self.conn, self.rows, self.labels = conn, rows, labels
        self.sha256 = _sha256(rows.path)
        self.batch_id = pool.add_batch(conn, path=rows.source.where, sha256=self.sha256,
                                       file_format=rows.source.file_format, layout=rows.layout.name)
        self.report = FileReport(path=str(rows.path), file_format=rows.source.file_format, layout=rows.layout.name)
        self.seen: set[bytes] = set()  # digests of the rows' ids, for duplicate rows
        self.pairs: dict[bytes, str | None] = {}  # digest of each pair id of this file -> its first split
        self.annotators: dict[str, int] = {}

    def write(self, chunk: list[tuple[str, Parsed]]) -> None:
        conn, report, batch_id = self.conn, self.report, self.batch_id
        records: dict[str, dict[str, Any]] = {}
        completions: dict[str, dict[str, Any]] = {}
        pairs: dict[str, dict[str, Any]] = {}
        judgments: dict[str, dict[str, Any]] = {}
        names = sorted({j.annotator for _, row in chunk for j in row.judgments if j.annotator} - set(self.annotators)
                       ) if self.labels else []
        if names:
            self.annotators.update(pool.add_imported_annotators(conn, names=names))
        text_id = TextIds()
        for location, row in chunk:
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
            split = pair_meta.get("split")  # a Hub split, or the file's own split column
            for (pair_id, _), (i, j) in zip(found.pairs, row.pair_positions, strict=True):
                first = self.pairs.setdefault(text_key(pair_id), split)
                pairs.setdefault(pair_id, {
                    "id": pair_id, "record_id": record_id, "a_id": min(ids[i], ids[j]),
                    "b_id": max(ids[i], ids[j]), "source_key": row.source_key, "meta": pair_meta,
                    "batch_id": batch_id})
                if first != split:
                    report.note(f"a pair is in splits {first} and {split}: kept in {first}, the first read", location)
            judgment_ids = []
            for j in row.judgments if self.labels else ():
                judgment_id, pair_id, choice = judgment_of(found, j)
                judgment_ids.append(judgment_id)
                judgments.setdefault(judgment_id, {
                    "id": judgment_id, "kind": "pair" if j.completion is None else "rating", "source": j.source,
                    "record_id": record_id, "pair_id": pair_id,
                    "completion_id": None if j.completion is None else ids[j.completion],
                    "annotator_id": self.annotators.get(j.annotator), "choice": choice, "label": j.label,
                    "reason": j.reason, "meta": j.meta if j.score is None else {"score": j.score, **j.meta},
                    "batch_id": batch_id})
            fingerprint = text_key(json.dumps([record_id, ids, found.pairs, judgment_ids]))
            if fingerprint in self.seen:
                report.duplicate_rows += 1
            self.seen.add(fingerprint)
            for note in row.notes:
                report.note(note, location)
        report.records += pool.add_records(conn, list(records.values()))
        report.completions += pool.add_completions(conn, list(completions.values()))
        report.pairs += pool.add_pairs(conn, list(pairs.values()))
        report.judgments.update(pool.add_judgments(conn, list(judgments.values())))

    def finish(self) -> FileReport:
        report, read = self.report, self.rows
        report.rows, report.bad_rows = read.good + read.bad, read.bad
        report.pairs_present = len(self.pairs) - report.pairs
        counts = {"rows": report.rows, "records": report.records, "completions": report.completions,
                  "pairs": report.pairs, "judgments": dict(report.judgments)}
        if report.added == 0:
            pool.drop_batch(self.conn, batch_id=self.batch_id)
        else:
            pool.set_batch_counts(self.conn, batch_id=self.batch_id, counts=counts)
            assert read.layout is not None
            audit(self.conn, "ingest", entity="ingest_batch", entity_id=str(self.batch_id),
                  details={"path": read.source.where, "sha256": self.sha256, "layout": read.layout.name,
                           "labels_imported": self.labels, **counts})
        return report


def _default_rejects(root: Path) -> Path:
    """A new name per run, even for runs in the same second."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return root / "rejects" / f"ingest-{stamp}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"


class _Rejects:
    """Bad rows: their ``file:line: reason`` lines, and (where ``path`` names the rejects file, from the first bad
    row on) the rows with their reasons written aside as they come, one JSON object per line, to a file that
    ``stack`` renames onto that path when it closes without an error (and removes otherwise)."""

    def __init__(self, stack: ExitStack, path: Callable[[], Path] | None) -> None:
        self.stack, self._path = stack, path
        self.problems: list[str] = []
        self.path: Path | None = None
        self._file: Any = None

    def add(self, reject: dict[str, Any]) -> None:
        self.problems.append(f"{reject['location']}: {reject['reason']}")
        if self._path is None:
            return
        if self._file is None:
            self.path = self._path()
            try:
                tmp = self.stack.enter_context(staged(self.path))
                # a lone surrogate in a row is written as its JSON escape (\udXXX): the file stays valid UTF-8
                self._file = self.stack.enter_context(tmp.open("w", encoding="utf-8", errors="backslashreplace"))
            except OSError as err:
                raise InputError(f"{self.path}: cannot write the rejects file ({err.strerror or err})") from None
        try:
            self._file.write(json.dumps(reject, ensure_ascii=False, default=str) + "\n")
        except OSError as err:
            raise InputError(f"{self.path}: cannot write the rejects file ({err.strerror or err})") from None
