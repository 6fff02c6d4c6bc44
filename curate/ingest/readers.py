"""File readers: each yields ``(location, row)``, and ``read_rows`` adds the row's split; a row that cannot be read
yields a ``RowProblem``.

Locations are line numbers for text files (``file:3:``; a JSON array's item at the line it starts on) and row
numbers otherwise (``file:row 3:``, ``folder:train row 3:``, ``org/name@train:row 3:``). ``datasets`` folders
and Hugging Face Hub datasets are read by ``curate.ingest.hub``. Only regular files and folders are read, and
memory stays bounded whatever a file holds: lines (and CSV rows) are read in chunks up to ``MAX_LINE``, JSON
arrays up to ``MAX_JSON_ARRAY``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import stat
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from curate.errors import InputError
from curate.ingest.hub import DatasetRef, parse_ref, read_dataset
from curate.ingest.values import RowProblem


class FileFormat(str, Enum):
    auto = "auto"
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"
    hf = "hf"


FORMATS = tuple(f.value for f in FileFormat if f is not FileFormat.auto)
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long completions are normal; the default 128 KiB is not
MAX_LINE = 64 << 20  # bytes of one line (a CSV row): memory stays bounded whatever a file holds
MAX_JSON_ARRAY = 128 << 20  # bytes of a JSON array file, which is read whole
_CHUNK = 1 << 20
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_LONE_CR = re.compile(rb"\r(?!\n)")


@dataclass(frozen=True)
class Source:
    """An input file, ``datasets`` folder or Hub dataset and how to read it (``dataset``: what the ``datasets``
    library is given, for format ``hf``)."""

    path: Path
    file_format: str
    dataset: DatasetRef | None = None

    @property
    def where(self) -> str:
        """What a batch records as its source: the absolute path, or the Hub id as given."""
        if self.dataset is not None and not self.dataset.local:
            return str(self.path)
        return str(self.path.resolve())


def detect_format(path: Path, requested: str = "auto") -> Source:
    """Pick the reader for ``path`` from ``requested`` or from its name; only regular files and folders are read.

    A ``path`` that names nothing on disk but reads as ``FOLDER[:config][@split]`` or as a Hugging Face Hub id
    (``[org/]name[:config][@split]``, see ``hub.parse_ref``) is read through the ``datasets`` library."""
    fmt = FileFormat(requested).value if requested in {f.value for f in FileFormat} else requested
    ref = parse_ref(path)
    if ref is not None and fmt in ("auto", "hf"):
        return Source(path=path, file_format="hf", dataset=ref)
    _check_kind(path)
    if fmt == "auto":
        if path.is_dir():
            fmt = "hf"  # a save_to_disk folder, or a dataset repository (data files, README.md configs)
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
    return Source(path=path, file_format=fmt, dataset=DatasetRef(str(path), local=True) if fmt == "hf" else None)


_KINDS = {stat.S_IFIFO: "a named pipe (FIFO)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket"}


def _check_kind(path: Path) -> None:
    """A missing path, or anything but a regular file or a folder (a FIFO would block, /dev/zero never ends)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        broken = path.is_symlink()
        raise InputError(f"{path}: {'a symbolic link to a missing file' if broken else 'no such file or directory'}"
                         ) from None
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = _KINDS.get(stat.S_IFMT(mode), "a special file")
        raise InputError(f"{path}: {kind}, not a regular file; only files and `datasets` folders are read")
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{path}: the file name is not valid UTF-8; rename the file") from None


def read_rows(source: Source) -> Iterator[tuple[int | str, dict[str, Any] | RowProblem, str | None]]:
    """Yield ``(location, row, split)`` for every row of ``source`` (``split``: the name of the dataset split the
    row is in, where the source has named splits); unreadable files raise InputError."""
    try:
        if source.file_format == "hf":
            yield from read_dataset(str(source.path), source.dataset or DatasetRef(str(source.path), local=True))
            return
        reader = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet}[source.file_format]
        for where, row in reader(source.path):
            yield where, row, None
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(f"{source.path}: cannot read ({getattr(err, 'strerror', None) or err})") from None


def _open_binary(path: Path) -> io.BufferedIOBase:
    with open(path, "rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")  # type: ignore[return-value]


def _lines(path: Path, fh: io.BufferedIOBase, *, lone_cr: bool = False) -> Iterator[tuple[int, bytes | bytearray]]:
    """The physical lines of ``fh`` with their numbers, each read in bounded chunks (at most ``MAX_LINE`` bytes).

    A line ends at ``\\n``; with ``lone_cr`` also at a ``\\r`` not followed by ``\\n`` (old Mac files)."""
    number, line = 0, bytearray()  # a long line, read on chunk by chunk
    try:
        for part in _pieces(fh, lone_cr):
            if len(line) + len(part) > MAX_LINE:
                raise InputError(f"{path}:{number + 1}: line longer than the {_size(MAX_LINE)} limit "
                                 "(not a file of rows?)")
            ended = part.endswith(b"\n") or (lone_cr and part.endswith(b"\r"))
            if ended and not line:
                number += 1
                yield number, part
            elif ended:
                line += part
                number += 1
                yield number, line
                line = bytearray()
            else:
                line += part
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(f"{path}:{number + 1}: cannot read ({getattr(err, 'strerror', None) or err})") from None
    if line:
        yield number + 1, line


def _pieces(fh: io.BufferedIOBase, lone_cr: bool) -> Iterator[bytes]:
    """``fh`` in pieces of about ``_CHUNK`` bytes; a piece that ends a line ends with its line end."""
    while chunk := fh.readline(_CHUNK):
        if not lone_cr:
            yield chunk
            continue
        if chunk.endswith(b"\r") and fh.peek(1)[:1] == b"\n":  # type: ignore[attr-defined]  # \r\n cut by _CHUNK
            chunk += fh.read(1)
        start = 0
        for end in _LONE_CR.finditer(chunk):
            yield chunk[start:end.end()]
            start = end.end()
        if start < len(chunk):
            yield chunk[start:]


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit} bytes"


def _skip(text: str, pos: int) -> int:
    """The position of the first character at or after ``pos`` that is not JSON whitespace."""
    found = _WHITESPACE.match(text, pos)
    return found.end() if found else pos


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


class _Decoder:
    """Strict JSON: duplicate keys, NaN and Infinity are noted as problems (the value is still delimited)."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self._json = json.JSONDecoder(object_pairs_hook=self._object, parse_constant=self._constant)

    def _object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        value = dict(pairs)
        if len(value) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    self.problems.append(f"duplicate key {key!r}")
                    break
                seen.add(key)
        return value

    def _constant(self, name: str) -> None:
        self.problems.append(f"{name} is not valid JSON")

    def raw_decode(self, text: str, start: int) -> tuple[Any, int]:
        """The value at ``start`` and where it ends; JSONDecodeError and RecursionError pass through."""
        self.problems.clear()
        return self._json.raw_decode(text, start)

    def parse(self, text: str) -> dict[str, Any] | RowProblem:
        """The one JSON object in ``text``, or why it is not one."""
        self.problems.clear()
        try:
            value = self._json.decode(text)
        except RecursionError:
            return RowProblem("invalid JSON (nested too deeply)")
        except ValueError as err:
            return RowProblem(f"invalid JSON ({err})")
        return self.row(value)

    def row(self, value: Any) -> dict[str, Any] | RowProblem:
        """The value just decoded as a row, or why it is not one."""
        if self.problems:
            return RowProblem(f"invalid JSON ({self.problems[0]})")
        if not isinstance(value, dict):
            return RowProblem(f"expected a JSON object, got {type(value).__name__}")
        return value


def parse_object(line: str) -> dict[str, Any] | RowProblem:
    """One JSON object (NaN, Infinity, duplicate keys and other values are problems, not rows)."""
    return _Decoder().parse(line)


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowProblem]]:
    with _open_binary(path) as fh:
        head = fh.peek(64)[:64].removeprefix(b"\xef\xbb\xbf").lstrip() if hasattr(fh, "peek") else b""
        if head.startswith(b"["):
            data = fh.read(MAX_JSON_ARRAY + 1)
            if len(data) > MAX_JSON_ARRAY:
                raise InputError(f"{path}: a JSON array larger than the {_size(MAX_JSON_ARRAY)} limit; "
                                 "write it as JSONL (one object per line)")
            yield from _read_json_array(path, data)
            return
        decoder = _Decoder()
        for number, raw in _lines(path, fh):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                yield number, RowProblem(f"not UTF-8 text (byte {err.start})")
                continue
            if not line.strip():
                continue
            yield number, decoder.parse(line)


def _read_json_array(path: Path, data: bytes) -> Iterator[tuple[int, dict[str, Any] | RowProblem]]:
    """Each item of a JSON array at the line it starts on. A syntax error ends the file (the items after it cannot
    be told apart); a problem inside an item is that item's."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise InputError(f"{path}:{line}: not UTF-8 text") from None
    decoder = _Decoder()
    pos = _skip(text, _skip(text, 0) + 1)  # after "["
    line, counted = 1, 0
    if not text.startswith("]", pos):
        while True:
            line, counted = line + text.count("\n", counted, pos), pos
            try:
                value, pos = decoder.raw_decode(text, pos)
            except RecursionError:
                raise InputError(f"{path}:{line}: invalid JSON (nested too deeply)") from None
            except json.JSONDecodeError as err:
                raise InputError(f"{path}:{err.lineno}: invalid JSON ({err.msg}: column {err.colno})") from None
            yield line, decoder.row(value)
            pos = _skip(text, pos)
            if text.startswith("]", pos):
                break
            if not text.startswith(",", pos):
                raise InputError(f"{path}:{_line_of(text, pos)}: invalid JSON (expected ',' or ']' after an item)")
            pos = _skip(text, pos + 1)
    pos = _skip(text, pos + 1)
    if pos < len(text):
        raise InputError(f"{path}:{_line_of(text, pos)}: invalid JSON (extra data after the array)")


@dataclass
class _CsvRow:
    """Where the CSV reader is: the last line it was handed, the line and size of the row it is reading, and
    whether the file has ended."""

    line: int = 0
    start: int = 1
    size: int = 0
    ended: bool = False


def _read_csv(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowProblem]]:
    """CSV rows at the physical line they start on. Lines are decoded one by one, so invalid UTF-8 is a problem of
    the row holding it, at its own line; a row (quoted fields may span lines) is at most ``MAX_LINE`` bytes. A lone
    ``\\r`` ends a line too. A malformed row (``"a"b``) is that row's problem; a quote never closed ends the file."""
    delimiter = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    bad: dict[int, int] = {}  # line number -> offset of its first byte that is not UTF-8
    at = _CsvRow()

    def decoded(fh: io.BufferedIOBase) -> Iterator[str]:
        for number, raw in _lines(path, fh, lone_cr=True):
            at.line, at.size = number, at.size + len(raw)
            if at.size > MAX_LINE:
                raise InputError(f"{path}:{at.start}: CSV row longer than the {_size(MAX_LINE)} limit "
                                 "(a quote that is never closed?)")
            encoding = "utf-8-sig" if number == 1 else "utf-8"
            try:
                yield raw.decode(encoding)
            except UnicodeDecodeError as err:
                bad.setdefault(number, err.start)
                yield raw.decode(encoding, "surrogateescape")  # still delimited; the row is refused below
        at.ended = True

    with _open_binary(path) as fh:
        reader = csv.reader(decoded(fh), delimiter=delimiter, strict=True)  # an unclosed quote is an error
        header: list[str] | None = None
        while True:
            at.start, at.size = at.line + 1, 0
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                if header is None or at.ended:  # the reader goes on at the next line, unless there is none
                    raise InputError(f"{path}:{at.start}: invalid CSV ({err})") from None
                yield at.start, RowProblem(f"invalid CSV ({err})")
                continue
            broken = next((n for n in range(at.start, at.line + 1) if n in bad), None)
            if header is None:
                if broken is not None:
                    raise InputError(f"{path}:{broken}: not UTF-8 text (byte {bad[broken]})")
                if len(set(cells)) != len(cells) or any(not h.strip() for h in cells):
                    raise InputError(f"{path}:{at.start}: the header has empty or repeated column names")
                header = cells
            elif broken is not None:
                yield broken, RowProblem(f"not UTF-8 text (byte {bad[broken]})")
            elif cells and len(cells) != len(header):
                yield at.start, RowProblem(f"row has {len(cells)} fields, the header has {len(header)}")
            elif cells:
                yield at.start, dict(zip(header, cells, strict=True))


def _read_parquet(path: Path) -> Iterator[tuple[str, dict[str, Any] | RowProblem]]:
    import pyarrow.parquet as pq
    from pyarrow import ArrowException

    try:  # a batch of rows at a time: memory follows the batch, not the file
        batches = pq.ParquetFile(path).iter_batches(batch_size=4096)
        number = 0
        for batch in batches:
            for row in batch.to_pylist():
                number += 1
                yield f"row {number}", row
    except ArrowException as err:
        raise InputError(f"{path}: not a readable Parquet file ({err})") from None
