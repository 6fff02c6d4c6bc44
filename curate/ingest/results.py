"""What an ingest did, per file: rows read, rejected, new and already present."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

NOTE_LOCATIONS = 20  # locations kept per note (every row is counted): a report stays small for any file


@dataclass
class FileReport:
    path: str
    file_format: str
    layout: str
    rows: int = 0
    bad_rows: int = 0
    duplicate_rows: int = 0  # rows repeating an earlier row of this ingest exactly
    records: int = 0  # new
    completions: int = 0
    pairs: int = 0
    pairs_present: int = 0  # pairs of this file already in the project
    judgments: Counter[str] = field(default_factory=Counter)  # new, by source
    notes: dict[str, list[str]] = field(default_factory=dict)  # note -> the first NOTE_LOCATIONS locations
    note_rows: Counter[str] = field(default_factory=Counter)  # note -> how many rows have it

    @property
    def added(self) -> int:
        return self.records + self.completions + self.pairs + sum(self.judgments.values())

    def note(self, text: str, location: str) -> None:
        self.note_rows[text] += 1
        locations = self.notes.setdefault(text, [])
        if len(locations) < NOTE_LOCATIONS:
            locations.append(location)


@dataclass
class IngestReport:
    files: list[FileReport]
    problems: list[str] = field(default_factory=list)  # bad rows skipped with --skip-bad
    rejects_path: Path | None = None

    @property
    def added(self) -> int:
        return sum(f.added for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        files = []
        for f in self.files:
            item = asdict(f)
            item["judgments"] = dict(f.judgments)
            item["notes"] = dict(f.note_rows)
            del item["note_rows"]
            files.append(item)
        return {"files": files, "added": self.added, "bad_rows": len(self.problems),
                "rejects": str(self.rejects_path) if self.rejects_path else None}
