"""The annotators' instructions: the project's markdown file, versioned in the store when it changes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from curate.errors import ProjectError
from curate.store import Store, audit
from curate.store.schema import InstructionVersion

DEFAULT = """# How to judge

For each prompt you see two answers, **A** and **B** (their order is random, and which model wrote
them is hidden). Pick the one a careful expert would rather send:

- **A** or **B**: the better one; **Tie**: equally good; **Both bad**: neither is acceptable.
- Judge helpfulness, correctness and harmlessness, in that order; length is not quality.
- Confidence (optional): 1 = a guess, 5 = certain. A short reason helps the lead review.

Keys: **1** A · **2** B · **3** Tie · **4** Both bad · **Enter** submit (in a text field: Ctrl+Enter).
**Skip** an item you cannot judge; **Flag** one that is broken or offensive (say why).
"""


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
        version = conn.scalar(select(InstructionVersion.version).where(InstructionVersion.sha256 == digest))
    if version is not None:
        return int(version), body
    try:
        with store.write() as conn:
            version = conn.scalar(select(InstructionVersion.version).where(InstructionVersion.sha256 == digest))
            if version is None:
                version = int(conn.scalar(select(func.max(InstructionVersion.version))) or 0) + 1
                conn.execute(insert(InstructionVersion).values(version=version, sha256=digest, text=body))
                audit(conn, "instructions.version", entity="instructions", entity_id=str(version),
                      details={"sha256": digest, "file": str(path)})
    except IntegrityError:  # another server process stored this text (or took the number) at the same moment
        return current_instructions(store, path)
    return int(version), body
