"""Reading prompt/completion/preference files into a project (``curate ingest``)."""

from __future__ import annotations

from curate.ingest.pipeline import ingest_files
from curate.ingest.report import FileReport, IngestReport

__all__ = ["FileReport", "IngestReport", "ingest_files"]
