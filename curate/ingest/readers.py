"""File readers: each yields ``(location, row)``; a row that cannot be read yields a ``RowProblem``.

Locations are line numbers for text files (``file:3:``) and row numbers otherwise (``file:row 3:``).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from curate.errors import InputError
from curate.ingest.values import RowProblem


class FileFormat(str, Enum):
    auto = "auto"
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"
    hf = "hf"


FORMATS = tuple(f.value for f in FileFormat if f is not FileFormat.auto)
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long completions are normal; the default 128 KiB is not


@dataclass(frozen=True)
class Source:
    """An input file (or ``datasets`` folder) and how to read it."""

    path: Path
    file_format: str


def detect_format(path: Path, requested: str = "auto") -> Source:
    """Pick the reader for ``path`` from ``requested`` or from its name."""
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    fmt = FileFormat(requested).value if requested in {f.value for f in FileFormat} else requested
    if fmt == "auto":
        if path.is_dir():
            if not any((path / f).exists() for f in ("dataset_info.json", "dataset_dict.json", "state.json")):
                raise InputError(f"{path}: a directory that is not a `datasets` save_to_disk folder")
            fmt = "hf"
        else:
            name = path.name.lower().removesuffix(".gz")
            suffix = name.rsplit(".", 1)[-1] if "." in name else ""
            fmt = {"jsonl": "jsonl", "json": "jsonl", "ndjson": "jsonl", "csv": "csv", "tsv": "csv",
                   "parquet": "parquet", "pq": "parquet"}.get(suffix, "")
            if not fmt:
                raise InputError(f"{path}: cannot tell the format from the name; use --format "
                                 f"{'|'.join(FORMATS)}")
    elif fmt not in FORMATS:
        raise InputError(f"{path}: unknown format {fmt!r} (known: auto, {', '.join(FORMATS)})")
    if (fmt == "hf") != path.is_dir():
        raise InputError(f"{path}: format {fmt} needs {'a folder' if fmt == 'hf' else 'a file'}")
    return Source(path=path, file_format=fmt)


def read_rows(source: Source) -> Iterator[tuple[int | str, dict[str, Any] | RowProblem]]:
    """Yield every row of ``source``; unreadable files raise InputError."""
    reader = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet, "hf": _read_hf}
    try:
        yield from reader[source.file_format](source.path)
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(f"{source.path}: cannot read ({getattr(err, 'strerror', None) or err})") from None


def _open_binary(path: Path) -> io.BufferedIOBase:
    with open(path, "rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")  # type: ignore[return-value]


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # NaN and Infinity are not JSON


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowProblem]]:
    with _open_binary(path) as fh:
        head = fh.peek(64)[:64].removeprefix(b"\xef\xbb\xbf").lstrip() if hasattr(fh, "peek") else b""
        if head.startswith(b"["):
            yield from _read_json_array(fh.read())
            return
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                yield number, RowProblem(f"not UTF-8 text (byte {err.start})")
                continue
            if not line.strip():
                continue
            yield number, parse_object(line)


def _read_json_array(data: bytes) -> Iterator[tuple[int | str, dict[str, Any] | RowProblem]]:
    try:
        items = _DECODER.decode(data.decode("utf-8-sig"))
    except RecursionError:
        yield 1, RowProblem("invalid JSON (nested too deeply)")
        return
    except (UnicodeDecodeError, ValueError) as err:
        yield 1, RowProblem(f"invalid JSON ({err})")
        return
    for number, item in enumerate(items, start=1):
        yield f"item {number}", item if isinstance(item, dict) else RowProblem(
            f"expected a JSON object, got {type(item).__name__}")


def parse_object(line: str) -> dict[str, Any] | RowProblem:
    """One JSON object (NaN, Infinity and other values are problems, not rows)."""
    try:
        value = _DECODER.decode(line)
    except RecursionError:
        return RowProblem("invalid JSON (nested too deeply)")
    except ValueError as err:
        return RowProblem(f"invalid JSON ({err})")
    if not isinstance(value, dict):
        return RowProblem(f"expected a JSON object, got {type(value).__name__}")
    return value


def _read_csv(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowProblem]]:
    delimiter = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    with _open_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.reader(text, delimiter=delimiter)
        try:
            header = next(reader, None)
        except UnicodeDecodeError as err:
            raise InputError(f"{path}:1: not UTF-8 text (byte {err.start})") from None
        if header is None:
            return
        if len(set(header)) != len(header) or any(not h.strip() for h in header):
            raise InputError(f"{path}:1: the header has empty or repeated column names")
        line = reader.line_num
        while True:
            start = line + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as err:
                raise InputError(f"{path}:{start}: not UTF-8 text (byte {err.start})") from None
            except csv.Error as err:
                raise InputError(f"{path}:{start}: invalid CSV ({err})") from None
            line = reader.line_num
            if not cells:
                continue
            if len(cells) != len(header):
                yield start, RowProblem(f"row has {len(cells)} fields, the header has {len(header)}")
                continue
            yield start, dict(zip(header, cells, strict=True))


def _read_parquet(path: Path) -> Iterator[tuple[str, dict[str, Any] | RowProblem]]:
    import pyarrow.parquet as pq
    from pyarrow import ArrowException

    try:
        table = pq.read_table(path)
    except ArrowException as err:
        raise InputError(f"{path}: not a readable Parquet file ({err})") from None
    for number, row in enumerate(table.to_pylist(), start=1):
        yield f"row {number}", row


def _read_hf(path: Path) -> Iterator[tuple[str, dict[str, Any] | RowProblem]]:
    from datasets import Dataset, load_from_disk

    try:
        data = load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as err:
        raise InputError(f"{path}: not a readable `datasets` folder ({err})") from None
    splits = {"": data} if isinstance(data, Dataset) else dict(data)
    for split, dataset in splits.items():
        for number, row in enumerate(dataset, start=1):
            yield (f"{split} row {number}" if split else f"row {number}"), row
