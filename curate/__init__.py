"""curate: active curation of RLHF/DPO preference data."""

from __future__ import annotations

__version__ = "0.1.0"

from curate.errors import CurateError
from curate.ingest import ingest_files
from curate.project import Project, init_project, open_project
from curate.status import project_status

__all__ = ["CurateError", "Project", "__version__", "ingest_files", "init_project", "open_project",
           "project_status"]
