"""Pictures of agreement for the lead tab and the report: per-annotator agreement bars and the confusion
matrix of people's labels against the final labels (matplotlib ``Figure`` objects, no pyplot state)."""

from __future__ import annotations

from typing import Any

import numpy as np

from curate.labels.vocabulary import CHOICES

NAMES = {"a": "A", "b": "B", "tie": "tie", "both_bad": "both bad"}


def annotator_bars(report: dict[str, Any], *, top: int = 25) -> Any:
    """Horizontal bars: each annotator's agreement with the others' majority (and accuracy on gold, where
    there is gold), for the ``top`` annotators with the most labels."""
    from matplotlib.figure import Figure

    people = [a for a in sorted(report["annotators_detail"], key=lambda a: (-a["labels"], a["annotator"]))
              if a["agrees_with_majority"] is not None][:top][::-1]
    fig = Figure(figsize=(6, 0.9 + 0.28 * max(len(people), 1)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(people))
    ax.barh(y + 0.2, [a["agrees_with_majority"] for a in people], height=0.4, label="agrees with the others")
    gold = [a["gold_accuracy"] for a in people]
    if any(g is not None for g in gold):
        ax.barh(y - 0.2, [g or 0 for g in gold], height=0.4, label="accuracy on gold")
    ax.set_yticks(y, [f"{a['annotator']} ({a['labels']})" for a in people], fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of labels")
    ax.set_title("per annotator (labels given)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def confusion_figure(matrix: np.ndarray) -> Any:
    """The people's labels (rows) against the final labels (columns), with counts in the cells."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    names = [NAMES[c] for c in CHOICES]
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("final label")
    ax.set_ylabel("annotator's label")
    high = matrix.max() / 2 if matrix.size else 0
    for (i, j), n in np.ndenumerate(matrix):
        ax.text(j, i, str(n), ha="center", va="center", color="white" if n > high else "black", fontsize=9)
    ax.set_title("labels vs final labels", fontsize=10)
    return fig
