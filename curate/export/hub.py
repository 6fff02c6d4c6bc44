"""An export's splits pushed to the Hugging Face Hub as one dataset repo (``datasets``' ``push_to_hub``: a parquet
file per split and a dataset card), with every failure a one-line ``CurateError``. The token comes from where
``huggingface_hub`` finds it: ``HF_TOKEN``, or ``hf auth login``."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from curate.errors import CurateError

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def check_push(repo_id: str) -> None:
    """Refuse, before anything is built or written, a push that cannot start: offline mode, a malformed repo id,
    no token."""
    offline = [v for v in OFFLINE_VARIABLES if os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE")]
    if offline:
        raise CurateError(f"--push-to-hub {repo_id}: pushing needs the network and {' and '.join(offline)} "
                          f"{'is' if len(offline) == 1 else 'are'} set; unset it to push, or export with --out only")
    from huggingface_hub import get_token
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise CurateError(f"--push-to-hub {repo_id!r}: not a repo id; give ORG/NAME (or NAME in your own "
                          "namespace) of letters, digits, '-', '_' and '.'") from None
    if not get_token():
        raise CurateError(f"--push-to-hub {repo_id}: no Hugging Face token; set HF_TOKEN or run `hf auth login`")


def push_export(rows: dict[str, list[dict[str, Any]]], repo_id: str, *, private: bool = False) -> dict[str, Any]:
    """Push ``rows`` (split -> rows, as ``render`` gives them) to the dataset repo ``repo_id``, created (private
    if asked) when missing. A repo that exists keeps its visibility, so ``private`` refuses a public one. Returns
    the repo id, its URL, ``private``, whether the repo was created, the commit's URL and sha and the rows per
    split."""
    check_push(repo_id)
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    with _quiet(), _one_line(repo_id):
        try:
            existing = HfApi().repo_info(repo_id, repo_type="dataset")
        except RepositoryNotFoundError:
            existing = None
        if existing is not None and private and not existing.private:
            raise CurateError(f"--push-to-hub {repo_id}: the dataset repo exists and is public; --private only "
                              "applies to a new repo (make it private on the Hub first, or push elsewhere)")
        # not private: the Hub's default for the namespace (an organisation may make new repos private)
        info = _dataset_dict(rows).push_to_hub(repo_id, private=True if private else None)
    repo_url = getattr(info, "repo_url", None)
    return {"repo_id": getattr(repo_url, "repo_id", None) or repo_id,
            "url": str(repo_url) if repo_url else f"{_endpoint()}/datasets/{repo_id}",
            "private": private, "created": existing is None,
            "commit_url": getattr(info, "commit_url", None), "commit_sha": getattr(info, "oid", None),
            "rows": {s: len(r) for s, r in rows.items()}}


def _dataset_dict(rows: dict[str, list[dict[str, Any]]]) -> Any:
    """The splits as one DatasetDict with one schema: a column that is empty (null) in one split takes the type
    it has in the others, as ``push_to_hub`` requires the same features in every split."""
    import datasets
    import pyarrow as pa

    tables = {s: pa.Table.from_pylist(r) for s, r in rows.items()}
    schema = pa.unify_schemas([t.schema for t in tables.values()], promote_options="permissive")
    return datasets.DatasetDict({s: datasets.Dataset(t.select(schema.names).cast(schema))
                                 for s, t in tables.items()})


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


@contextmanager
def _quiet() -> Iterator[None]:
    """No progress bars or warnings from ``datasets`` and ``huggingface_hub`` while pushing (the library never
    prints; the command says what happened in one line)."""
    import datasets
    import huggingface_hub.utils as hub_utils
    from huggingface_hub.utils import logging as hub_logging

    bars = datasets.is_progress_bar_enabled(), hub_utils.are_progress_bars_disabled()
    levels = datasets.logging.get_verbosity(), hub_logging.get_verbosity()
    datasets.disable_progress_bars()
    hub_utils.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    hub_logging.set_verbosity_error()
    try:
        yield
    finally:
        datasets.logging.set_verbosity(levels[0])
        hub_logging.set_verbosity(levels[1])
        if bars[0]:
            datasets.enable_progress_bars()
        if not bars[1]:
            hub_utils.enable_progress_bars()


@contextmanager
def _one_line(repo_id: str) -> Iterator[None]:
    """HTTP, connection and file errors of the push as one ``CurateError`` naming the repo and the reason (never
    the token)."""
    from huggingface_hub.errors import HfHubHTTPError

    unreachable: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, names in (("httpx2", ("HTTPError",)), ("httpx", ("HTTPError",)),
                          ("requests", ("ConnectionError", "Timeout"))):
        with suppress(ImportError):
            unreachable += [getattr(importlib.import_module(module), name) for name in names]
    try:
        yield
    except CurateError:
        raise
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        said = err.server_message or str(err)
        hint = "; check that the token (HF_TOKEN or `hf auth login`) may write there" if status in (401, 403) else ""
        raise CurateError(_scrub(f"--push-to-hub {repo_id}: the Hub answered "
                                 f"{f'HTTP {status}' if status else 'an error'} ({_first_line(said)}){hint}; "
                                 "nothing was committed")) from None
    except tuple(unreachable) as err:
        raise CurateError(_scrub(f"--push-to-hub {repo_id}: cannot reach the Hub at {_endpoint()} "
                                 f"({_first_line(str(err)) or type(err).__name__}); nothing was committed")) from None
    except OSError as err:  # a full temporary folder while writing the parquet files, ...
        reason = _first_line(str(err)) or type(err).__name__
        raise CurateError(_scrub(f"--push-to-hub {repo_id}: the push failed ({reason}); nothing was committed")) \
            from None


def _first_line(text: str) -> str:
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    return line if len(line) <= 200 else line[:197] + "..."


def _scrub(message: str) -> str:
    """``message`` without the token, should a server or library have echoed it."""
    from huggingface_hub import get_token

    token = get_token()
    return message.replace(token, "***") if token else message
