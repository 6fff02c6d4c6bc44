"""Datasets read through the ``datasets`` library: ``save_to_disk`` folders, dataset repository folders (a clone of
a Hub dataset repo: data files, or a README.md with ``configs:``) and Hugging Face Hub ids, ``name`` or
``org/name``, each with an optional ``:config`` and ``@split`` (``@train``, ``@train[:1000]``).

Rows are yielded as ``(location, row, split)`` with the same Python values the Parquet reader gives (Arrow's
``to_pylist``), so they meet the same row checks. ``load_dataset`` is used without streaming: the data is
memory-mapped Arrow in the ``datasets`` cache, so a second ingest (or one with ``HF_HUB_OFFLINE=1``) reads the
cache, and a missing config or split is known before any row is read.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.errors import InputError
from curate.ingest.values import RowProblem

SAVED_MARKERS = ("dataset_info.json", "dataset_dict.json", "state.json")  # what save_to_disk writes
_NAME = r"(?!.*(?:--|\.\.))[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"  # huggingface_hub's validate_repo_id
HUB_ID = re.compile(rf"(?:{_NAME}/)?{_NAME}")
_CONFIG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
_SPLIT = re.compile(r"(\w+(?:\.\w+)*)(\[[\w%:+-]*\])?", re.ASCII)  # a split name, or a slice of one
_DATA_SUFFIXES = (".jsonl", ".json", ".ndjson", ".csv", ".tsv", ".parquet", ".pq", ".gz", ".arrow", ".txt", ".git")
_BATCH = 1000
_TABLE_BUILDERS = {"json", "csv", "parquet", "arrow", "cache"}  # "cache": a Hub dataset prepared before
NOT_A_DATASET = ("a directory that is not a `datasets` save_to_disk folder, nor a dataset repository with data "
                 "files (.parquet, .jsonl/.json, .csv, .arrow, or a README.md with `configs:`)")
LOCAL_COPY = ("give a local copy instead: a `save_to_disk` folder, a clone of the dataset repo "
              "(git clone https://huggingface.co/datasets/NAME), or its data files")


@dataclass(frozen=True)
class DatasetRef:
    """What ``load_dataset`` (or ``load_from_disk``) is given: a Hub id or a local folder, a config, a split."""

    name: str
    config: str | None = None
    split: str | None = None
    local: bool = False


def parse_ref(path: Path) -> DatasetRef | None:
    """``path`` as a dataset reference where it names nothing on disk: ``FOLDER[:config][@split]`` for an existing
    folder, or a Hub id ``[org/]name[:config][@split]``; None for anything else (a missing file stays missing)."""
    text = str(path)
    if os.path.lexists(text):
        return None
    base, config, split = text, None, None
    head, at, tail = base.rpartition("@")
    if at and _SPLIT.fullmatch(tail):
        base, split = head, tail
    head, colon, tail = base.rpartition(":")
    if colon and _CONFIG.fullmatch(tail):
        base, config = head, tail
    if (config or split) and os.path.isdir(base):
        return DatasetRef(base, config, split, local=True)
    in_local_folder = "/" in base and os.path.isdir(base.split("/", 1)[0])  # data/pool.jsonl.bak: a mistyped path
    if (HUB_ID.fullmatch(base) and not base.lower().endswith(_DATA_SUFFIXES) and not os.path.lexists(base)
            and not base.startswith(("./", "../")) and not in_local_folder):
        return DatasetRef(base, config, split)
    return None


def is_saved(folder: Path) -> bool:
    """Whether ``folder`` was written by ``save_to_disk`` (else it is read as a dataset repository)."""
    return any((folder / f).exists() for f in SAVED_MARKERS)


def read_dataset(label: str, ref: DatasetRef) -> Iterator[tuple[str, dict[str, Any] | RowProblem, str | None]]:
    """Every row of ``ref`` (``label``: how errors name it). Without ``@split`` every split is read and a row's
    location names its split (``train row 3``); with one, ``row 3`` (the label already says ``@train``)."""
    data = _load(label, ref)
    from datasets import Dataset

    split_name = _SPLIT.fullmatch(ref.split).group(1) if ref.split else None  # type: ignore[union-attr]
    splits = {split_name: data} if isinstance(data, Dataset) else dict(data)
    for split, dataset in splits.items():
        prefix = f"{split} " if split and not ref.split else ""
        number = 0
        for batch in dataset.with_format("arrow").iter(batch_size=_BATCH):
            for row in batch.to_pylist():
                number += 1
                yield f"{prefix}row {number}", row, split or None


def _load(label: str, ref: DatasetRef) -> Any:
    """The Dataset or DatasetDict of ``ref``; every failure is a one-line InputError naming ``label``."""
    import datasets
    from datasets.data_files import EmptyDatasetError
    from datasets.exceptions import DataFilesNotFoundError, DatasetGenerationError, DatasetNotFoundError

    folder = Path(ref.name) if ref.local else None
    with _quiet() as kept:
        try:
            if folder is not None and is_saved(folder):
                return _load_saved(label, folder, ref)
            builder = datasets.load_dataset_builder(ref.name, ref.config)
            if builder.name not in _TABLE_BUILDERS:
                raise InputError(f"{label}: {NOT_A_DATASET} (it holds {builder.name} data)")
            builder.download_and_prepare()
            return builder.as_dataset(split=ref.split)
        except InputError:
            raise
        except ConnectionError as err:
            raise InputError(_offline_message(label, ref, err)) from None
        except DatasetNotFoundError as err:
            raise InputError(f"{label}: no such file or directory, nor a Hub dataset that can be read "
                             f"({_first_line(err)})") from None
        except (DataFilesNotFoundError, EmptyDatasetError):
            raise InputError(f"{label}: {NOT_A_DATASET}") from None
        except DatasetGenerationError as err:
            why = kept.messages[-1].splitlines()[0] if kept.messages else _first_line(_root(err))
            raise InputError(f"{label}: cannot read the dataset's data files ({why})") from None
        except Exception as err:  # datasets raises ValueError, RuntimeError, OSError, ... for input
            raise InputError(_load_message(label, ref, err)) from None


def _load_saved(label: str, folder: Path, ref: DatasetRef) -> Any:
    from datasets import Dataset, load_from_disk

    try:
        data = load_from_disk(str(folder))
    except (FileNotFoundError, ValueError) as err:
        raise InputError(f"{label}: not a readable `datasets` folder ({_first_line(err)})") from None
    if ref.config:
        raise InputError(f"{label}: a `datasets` save_to_disk folder has no configs")
    if ref.split:
        if isinstance(data, Dataset) or ref.split not in data:
            splits = "none" if isinstance(data, Dataset) else ", ".join(data)
            raise InputError(f"{label}: no split '{ref.split}' in this save_to_disk folder (splits: {splits}; "
                             "slices such as train[:100] are read from Hub ids and dataset repo folders)")
        return data[ref.split]
    return data


def _offline_message(label: str, ref: DatasetRef, err: Exception) -> str:
    import datasets

    why = ("HF_HUB_OFFLINE is set" if datasets.config.HF_HUB_OFFLINE
           else f"the Hugging Face Hub cannot be reached ({_first_line(err)})")
    return (f"{label}: no such file or directory, and the Hub dataset '{ref.name}' is not in the cache and cannot "
            f"be downloaded: {why}; {LOCAL_COPY.replace('NAME', ref.name)}")


def _load_message(label: str, ref: DatasetRef, err: Exception) -> str:
    """One line for what ``load_dataset`` refused: a script, a config or split that is not there, ..."""
    text = str(err)
    listed = re.search(r"(?:Available(?: configs in the cache)?|available configs|Should be one of):?\s*\[([^]]*)]",
                       text)
    names = ", ".join(re.findall(r"'([^']*)'", listed.group(1))) if listed else ""
    if "Dataset scripts are no longer supported" in text:
        script = text.rsplit(" ", 1)[-1]
        return (f"{label}: the dataset is built by a loading script ({script}), which `datasets` no longer runs; "
                "give its data files instead (the Hub keeps a Parquet conversion of most such datasets on the "
                "refs/convert/parquet branch)")
    if "Config name is missing" in text:
        return f"{label}: the dataset has several configs; name one as {ref.name}:CONFIG (configs: {names})"
    if "BuilderConfig" in text or "for config" in text:
        return f"{label}: no config '{ref.config}'" + (f" (configs: {names})" if names else "")
    if "Unknown split" in text:
        return f"{label}: no split '{_SPLIT.fullmatch(ref.split or '').group(1)}' (splits: {names})"  # type: ignore[union-attr]
    if "instruction" in text.lower():
        return f"{label}: '{ref.split}' is not a split or a slice of one ({_first_line(err)})"
    return f"{label}: cannot load the dataset ({type(err).__name__}: {_first_line(err)})"


def _root(err: BaseException) -> BaseException:
    """The first cause of ``err`` (what a DatasetGenerationError wraps)."""
    while err.__cause__ is not None:
        err = err.__cause__
    return err


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class _Kept(logging.Handler):
    """Keeps the messages the libraries log instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _quiet() -> Iterator[_Kept]:
    """No ``datasets``/``huggingface_hub`` log lines or progress bars on stderr (errors are one line; the errors
    they log are kept, as they name the data file), except the download and preparation bars on a terminal."""
    import datasets

    kept = _Kept()
    loggers = [logging.getLogger(name) for name in ("datasets", "huggingface_hub")]
    saved = [(lg.handlers, lg.level, lg.propagate) for lg in loggers]
    bars = datasets.is_progress_bar_enabled()
    for lg in loggers:
        lg.handlers, lg.propagate = [kept], False
        lg.setLevel(logging.ERROR)
    if not sys.stderr.isatty():
        datasets.disable_progress_bars()
    try:
        yield kept
    finally:
        for lg, (handlers, level, propagate) in zip(loggers, saved, strict=True):
            lg.handlers, lg.propagate = handlers, propagate
            lg.setLevel(level)
        if bars:
            datasets.enable_progress_bars()
