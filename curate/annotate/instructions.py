"""The annotators' instructions: the project's markdown file, versioned in the store when it changes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from curate.errors import ProjectError
from curate.project import DEFAULT_INSTRUCTIONS as DEFAULT
from curate.store import Store, assignments, audit


def current_instructions(store: Store, path: Path) -> tuple[int, str]:
    """The version and text of the instructions now: ``path`` if it exists, else the default text.
    A text not seen before becomes a new version (one write, audited)."""
    try:
        body = path.read_text(encoding="utf-8") if path.exists() else DEFAULT
    except (OSError, UnicodeDecodeError) as err:
        raise ProjectError(f"{path}: cannot read the instructions ({err})") from None
    if not body.strip():
        raise ProjectError(f"{path}: the instructions are empty")
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    with store.read() as conn:
        version = assignments.instruction_version(conn, sha256=digest)
    if version is not None:
        return version, body
    try:
        with store.write() as conn:
            version = assignments.instruction_version(conn, sha256=digest)
            if version is None:
                version = assignments.add_instruction_version(conn, sha256=digest, body=body)
                audit(conn, "instructions.version", entity="instructions", entity_id=str(version),
                      details={"sha256": digest, "file": str(path)})
    except assignments.VersionTaken:  # another server process stored this text (or took the number) at once
        return current_instructions(store, path)
    return version, body
