"""Rich tables for the CLI (the library returns data; only the CLI prints)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from curate.ingest import IngestReport


def ingest_table(report: IngestReport) -> Table:
    table = Table(title="ingested", title_justify="left")
    for column in ("file", "layout", "rows", "bad", "dup", "new pairs", "present", "new judgments"):
        table.add_column(column, justify="left" if column in ("file", "layout", "new judgments") else "right")
    for f in report.files:
        judgments = ", ".join(f"{n} {source}" for source, n in sorted(f.judgments.items())) or "0"
        table.add_row(Path(f.path).name, f.layout, str(f.rows), str(f.bad_rows), str(f.duplicate_rows),
                      str(f.pairs), str(f.pairs_present), judgments)
    return table


def status_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"project {summary['project']} ({summary['database']})", title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key in ("records", "completions", "pairs", "judgments"):
        table.add_row(key, str(summary[key]))
    for source, n in summary["judgments_by_source"].items():
        table.add_row(f"  judgments: {source}", str(n))
    for kind, n in summary["annotators"].items():
        table.add_row(f"annotators: {kind}", str(n))
    for key in ("rounds", "items", "models", "ingested_files"):
        table.add_row(key.replace("_", " "), str(summary[key]))
    return table
