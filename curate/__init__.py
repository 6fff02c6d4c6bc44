"""curate: active curation of RLHF/DPO preference data.

The public API is imported on first use, so ``import curate`` (and ``curate --help``) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_API = {
    "CurateError": "curate.errors",
    "Project": "curate.project",
    "init_project": "curate.project",
    "open_project": "curate.project",
    "ingest_files": "curate.ingest",
    "project_status": "curate.status",
    "embed_pool": "curate.pool",
    "load_pool": "curate.pool",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'curate' has no attribute {name!r}")
