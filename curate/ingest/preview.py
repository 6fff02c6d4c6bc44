"""``curate ingest --dry-run``: what ingest would make of each file (its layout, the role of each column, the
first row as parsed and the counts in the file), checked row by row like an ingest, with nothing written."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.errors import InputError
from curate.ingest.layouts import used_columns
from curate.ingest.pipeline import TextIds, judgment_of, read_file, row_ids
from curate.ingest.ranked import Ranked
from curate.ingest.rows import Parsed
from curate.progress import Progress, no_progress


@dataclass
class FilePreview:
    path: str
    file_format: str
    layout: str
    rows: int
    bad_rows: int
    roles: dict[str, list[str]]  # role -> columns; "metadata": the columns kept as metadata
    pair_rule: str | None  # rank-N layouts: how pairs are derived
    first: dict[str, Any] | None  # the first good row as parsed, with its location
    counts: dict[str, Any] = field(default_factory=dict)  # distinct records, completions, pairs; judgments by kind
    notes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # the bad rows (with skip_bad), as `file:line: reason`


def preview_files(paths: Sequence[Path | str], *, file_format: str = "auto", mapping: str | None = None,
                  label_values: str | None = None, pair_rule: str | None = None, skip_bad: bool = False,
                  progress: Progress | None = None) -> list[FilePreview]:
    """Read and check ``paths`` as ``ingest_files`` would, and describe them; a bad row raises InputError unless
    ``skip_bad`` (then it is counted)."""
    if not paths:
        raise InputError("no input files given")
    files = [read_file(Path(p), file_format, mapping, label_values, progress or no_progress, pair_rule=pair_rule)
             for p in paths]
    problems = [f"{r['location']}: {r['reason']}" for f in files for r in f.rejects]
    if problems and not skip_bad:
        more = f" (and {len(problems) - 1} more bad rows)" if len(problems) > 1 else ""
        raise InputError(f"{problems[0]}{more}; nothing would be ingested (--skip-bad ingests the good rows)",
                         problems)
    previews = []
    for path, read in zip(paths, files, strict=True):
        roles = dict(read.layout.roles(set(read.columns)))
        metadata = [c for c in read.columns if c not in used_columns(read.layout, set(read.columns))]
        if metadata:
            roles["metadata"] = metadata
        notes: Counter[str] = Counter(note for _, row in read.rows for note in row.notes)
        previews.append(FilePreview(
            path=str(path), file_format=read.source.file_format, layout=read.layout.name,
            rows=len(read.rows) + len(read.rejects), bad_rows=len(read.rejects), roles=roles,
            pair_rule=read.layout.rule if isinstance(read.layout, Ranked) else None,
            first=_describe(*read.rows[0]) if read.rows else None, counts=_counts(read.rows), notes=dict(notes),
            problems=[f"{r['location']}: {r['reason']}" for r in read.rejects]))
    return previews


def _describe(location: str, row: Parsed) -> dict[str, Any]:
    ratings: dict[int, list[str]] = {}
    for j in row.judgments:
        if j.completion is not None:
            ratings.setdefault(j.completion, []).append(
                f"score {j.score:g}" if j.score is not None else "good" if j.label else "bad")
    completions = [{"text": c.text, "model": c.model, "ratings": ratings.get(i, [])}
                   for i, c in enumerate(row.completions)]
    pairs = []
    for number, (i, j) in enumerate(row.pair_positions):
        said = {"a": f"{i + 1} wins", "b": f"{j + 1} wins", "tie": "tie", "both_bad": "both bad"}
        votes = [f"{said[v.choice]} ({v.source}{', ' + v.annotator if v.annotator else ''})" for v in row.judgments
                 if v.completion is None and v.pair == number and v.choice]
        pairs.append({"a": i + 1, "b": j + 1, "labels": votes})
    return {"location": location, "prompt": row.prompt.text, "conversation": row.prompt.messages is not None,
            "completions": completions, "pairs": pairs, "metadata": row.meta,
            **({"split": row.split} if row.split else {})}


def _counts(rows: list[tuple[str, Parsed]]) -> dict[str, Any]:
    text_id = TextIds()
    records, completions, pairs = set(), set(), set()
    judgments: dict[str, str] = {}  # id -> kind (source), as ingest keeps them: once each
    for _, row in rows:
        found = row_ids(text_id, row)
        records.add(found.record[0])
        completions.update(c[0] for c in found.completions)
        pairs.update(p[0] for p in found.pairs)
        for j in row.judgments:
            judgments[judgment_of(found, j)[0]] = f"{'pair' if j.completion is None else 'rating'} ({j.source})"
    return {"records": len(records), "completions": len(completions), "pairs": len(pairs),
            "judgments": dict(sorted(Counter(judgments.values()).items()))}
