"""A word-level diff of a rewrite against its original, as HTML (<del>/<ins>), for the rewrite view."""

from __future__ import annotations

import difflib
import html
import re

_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


def diff_html(original: str, rewrite: str) -> str:
    """``original`` → ``rewrite`` with removed words struck out and added ones marked; both escaped."""
    old, new = _TOKENS.findall(original or ""), _TOKENS.findall(rewrite or "")
    parts = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if op in ("delete", "replace"):
            parts.append(f"<del>{html.escape(''.join(old[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            parts.append(f"<ins>{html.escape(''.join(new[j1:j2]))}</ins>")
        if op == "equal":
            parts.append(html.escape("".join(old[i1:i2])))
    return f"<div style='white-space: pre-wrap'>{''.join(parts)}</div>"
