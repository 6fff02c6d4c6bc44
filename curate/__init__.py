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
    "project_status": "curate.report.status",
    "embed_pool": "curate.pool.units",
    "load_pool": "curate.pool.units",
    "cluster_pool": "curate.pool.cluster",
    "score_committee": "curate.scores.committee",
    "select_round": "curate.select.rounds",
    "answer_queue": "curate.annotate.simulated",
    "known_choices": "curate.ingest",
    "agreement_report": "curate.labels.agreement",
    "final_labels": "curate.labels.rule",
    "export_dataset": "curate.export:export",  # curate.export and curate.train.generate are also modules
    "plan_training": "curate.train.training",
    "run_training": "curate.train.training",
    "generate_completions": "curate.train.generate:generate",
    "report_data": "curate.report.data",
    "write_report": "curate.report.data",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        module, _, attribute = _API[name].partition(":")
        return getattr(import_module(module), attribute or name)
    raise AttributeError(f"module 'curate' has no attribute {name!r}")
