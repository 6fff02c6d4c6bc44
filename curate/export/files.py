"""An export's rows in TRL's columns, written all or nothing as .jsonl, .parquet or a ``datasets`` folder, and
the ``export`` that builds, renders, writes and audits one."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from curate.errors import CurateError
from curate.export.examples import LEFT_OUT, build_examples
from curate.export.formats import SPLITS, Example, export_format
from curate.files import publishing
from curate.project import Project
from curate.rendering import Content, completion_turns, prompt_turns, standard_completion
from curate.store import audit, pool

NO_TRAIN = "nothing to train on: every labelled example is in the test or calibration slice"
WRITERS = {".jsonl": "jsonl", ".parquet": "parquet"}  # --out's extension -> writer; none: a `datasets` folder
LINEAGE = ("origin", "record_id", "pair_id", "round", "item_id", "source", "annotators", "how",
           "instruction_versions")


def render(project: Project, examples: list[Example], fmt: str, *, lineage: bool = False, weights: bool = False,
           chat: bool | None = None) -> dict[str, list[dict[str, Any]]]:
    """Rows per split in TRL's columns for ``fmt``: standard (text) where every prompt and completion is plain
    text, conversational (lists of messages) where any has messages or ``chat`` says so (``curate train`` says
    whether its model has a chat template: the rendering every model step uses, ``curate.rendering``). SFT
    targets and KTO examples appear once per prompt and completion (the first in sort order, with the highest
    weight)."""
    form = export_format(fmt)
    if form.once_per_completion:
        best: dict[tuple[Any, ...], Example] = {}
        for e in examples:
            key = (e.split, e.record_id, e.chosen, e.label)
            if key not in best or e.weight > best[key].weight:
                best[key] = e if key not in best else replace(best[key], weight=e.weight)
        examples = sorted(best.values(), key=Example.key)
    completion_ids = {c for e in examples for c in (e.chosen, e.rejected) if c}
    with project.store.read() as conn:
        texts = pool.completion_texts(conn, ids=completion_ids)
        prompts = pool.prompts(conn, ids={e.record_id for e in examples})
    if chat is None:
        chat = any(m is not None for _, m in (*texts.values(), *prompts.values()))

    def prompt_of(record_id: str) -> Any:
        prompt = Content(*prompts[record_id])
        return prompt_turns(prompt) if chat else prompt.text

    def completion_of(completion_id: str) -> Any:
        completion = Content(*texts[completion_id])
        return completion_turns(completion) if chat else standard_completion(completion)

    out: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for e in examples:
        row: dict[str, Any] = {"prompt": prompt_of(e.record_id), **form.row(e, completion_of)}
        if weights:
            row["weight"] = round(e.weight, 6)
        if lineage:
            row.update({k: e.lineage.get(k) for k in LINEAGE})
        out[e.split].append(row)
    return {s: rows for s, rows in out.items() if rows}


def write_export(rows: dict[str, list[dict[str, Any]]], out: Path) -> dict[str, dict[str, Any]]:
    """Write each split (train to ``out``, the others beside it: ``x.test.jsonl``, or splits of one ``datasets``
    folder) as .jsonl, .parquet or a ``datasets`` folder (any other name), published as one set
    (``curate.files.publishing``): a reader sees the previous export or this one, whole. Per split: path, rows and
    sha256."""
    if not rows.get("train"):
        raise CurateError(NO_TRAIN)
    out = out.expanduser()
    if not out.parent.is_dir():
        raise CurateError(f"{out.parent}: no such folder")
    kind = export_kind(out)
    targets = {s: out if s == "train" or kind == "datasets" else out.with_name(f"{out.stem}.{s}{out.suffix}")
               for s in rows}
    _check_replaceable(out, kind)
    stale = [] if kind == "datasets" else [out.with_name(f"{out.stem}.{s}{out.suffix}").name for s in SPLITS[1:]]
    try:
        with publishing(out, names=stale) as stage:  # split files an earlier export of this name had go with it
            if kind == "datasets":
                _save_datasets(rows, stage / out.name)
            else:
                for s, path in targets.items():
                    _write_file(rows[s], stage / path.name, kind)
            digests = {s: _digest(stage / targets[s].name, s if kind == "datasets" else None) for s in rows}
    except OSError as err:  # a full disk, a read-only folder: the previous export stays as it was
        raise CurateError(f"{out}: cannot write the export ({err.strerror or err}); nothing was changed") from None
    return {s: {"path": str(targets[s]) + (f" [{s}]" if kind == "datasets" else ""), "rows": len(r),
                "sha256": digests[s]} for s, r in rows.items()}


def export_kind(out: Path) -> str:
    """What ``out`` names: ``jsonl``, ``parquet`` or ``datasets`` (a name without an extension, or a ``datasets``
    export already there); any other extension (``x.csv``, ``x.json``, ``x.jsonl.gz``) is a one-line error."""
    kind = WRITERS.get(out.suffix.lower())
    if kind is not None or not out.suffix or (out / "dataset_dict.json").is_file():
        return kind or "datasets"
    suffix = "".join(out.suffixes[-2:]) if out.suffix in (".gz", ".bz2", ".xz", ".zst") else out.suffix
    raise CurateError(f"{out}: curate cannot export to a {suffix} file; --out takes a .jsonl or .parquet file, or "
                      "a name without an extension for a `datasets` folder")


def _check_replaceable(out: Path, kind: str) -> None:
    """Refuse to replace what is not an export: a folder of other files, or a folder where a file goes."""
    if out.is_symlink() or not out.exists():
        return
    if kind != "datasets" and out.is_dir():
        raise CurateError(f"{out}: a folder, not a file; choose another --out")
    if kind == "datasets" and (not out.is_dir() or (any(out.iterdir()) and not (out / "dataset_dict.json").exists())):
        raise CurateError(f"{out}: exists and is not a `datasets` export; choose another --out (a name without "
                          ".jsonl or .parquet is saved as a `datasets` folder)")


def _save_datasets(rows: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """The splits as one ``datasets`` DatasetDict folder, without the progress bars ``datasets`` shows."""
    import datasets

    shown = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        datasets.DatasetDict({s: datasets.Dataset.from_list(r) for s, r in rows.items()}).save_to_disk(str(path))
    finally:
        if shown:
            datasets.enable_progress_bars()


def _write_file(rows: list[dict[str, Any]], path: Path, kind: str) -> None:
    if kind == "jsonl":
        with path.open("w", encoding="utf-8", newline="\n") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
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


def export(project: Project, *, fmt: str, out: Path | None = None, push_to_hub: str | None = None,
           private: bool = False, round_number: int | None = None, min_agreement: float | None = None,
           with_imported: bool = False, lineage: bool = False, weights: bool = False) -> dict[str, Any]:
    """Build, render and write one export to ``out`` and/or push it to the Hub dataset repo ``push_to_hub``
    (``curate.export.hub``; ``private`` for a new repo), and record it (format, options, files and their hashes,
    the push's repo and commit, the pairs left out and why) in the audit log. ``out``'s extension and the push's
    preconditions are checked before anything is built or written. Refuses an export with no examples."""
    if out is None and push_to_hub is None:
        raise CurateError("nothing to export to: give --out, --push-to-hub or both")
    if private and push_to_hub is None:
        raise CurateError("--private goes with --push-to-hub")
    if out is not None:
        export_kind(out.expanduser())
    if push_to_hub is not None:
        from curate.export.hub import check_push

        check_push(push_to_hub)
    examples = build_examples(project, fmt=fmt, round_number=round_number, min_agreement=min_agreement,
                              with_imported=with_imported, required=True)
    rows = render(project, examples.rows, fmt, lineage=lineage, weights=weights)
    if not rows.get("train"):
        raise CurateError(NO_TRAIN)
    files = write_export(rows, out) if out is not None else {}
    result = {"format": fmt, "round": round_number, "min_agreement": min_agreement, "with_imported": with_imported,
              "lineage": lineage, "weights": weights, "splits": files,
              "left_out": {LEFT_OUT[k]: n for k, n in examples.left_out.items()}}
    failed: CurateError | None = None
    if push_to_hub is not None:
        from curate.export.hub import push_export

        try:
            result["hub"] = push_export(rows, push_to_hub, private=private)
        except CurateError as err:
            if not files:
                raise
            result["hub"] = {"repo_id": push_to_hub, "private": private, "error": str(err)}
            failed = CurateError(f"{err} (the export to {out} was written)")
    with project.store.write() as conn:
        audit(conn, "export", entity="export", entity_id=fmt, details=result)
    if failed is not None:
        raise failed
    return result
