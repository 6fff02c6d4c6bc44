"""Labels: the one place where judgments become labels.

- ``vocabulary``: choices, judgment sources, how a label was decided, the methods (``StrEnum`` values);
- ``votes``: the pair judgments of the store, as tables of people's votes and single labels;
- ``rule``: the precedence, the final label of each pair, its agreement, and the binary training label;
- ``agreement``: inter-annotator agreement and the people against imported labels;
- ``adjudication``: the queue and a lead's decisions; ``plots``: the lead tab's pictures.

The names below are imported on first use, so ``curate.config`` can read the vocabulary without the rule.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_API = {"FinalLabel": "rule", "final_labels": "rule", "label_summary": "rule", "preferences": "rule",
        "training_labels": "rule", "Choice": "vocabulary", "How": "vocabulary", "Method": "vocabulary",
        "Source": "vocabulary", "PROJECT_SOURCES": "vocabulary"}
__all__ = list(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module(f"curate.labels.{_API[name]}"), name)
    raise AttributeError(f"module 'curate.labels' has no attribute {name!r}")
