"""Heuristic rules for a cold start: the units that match most of a file of regular expressions
(one per line, case-insensitive, ``#`` comments) in their prompt or completions come first."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from curate.strategies.base import PoolView, Strategy, StrategyError, top


def read_rules(path: Path) -> list[re.Pattern[str]]:
    """The patterns of a rules file; a bad pattern is an error naming its line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise StrategyError(f"{path}: cannot read the rules file ({err})") from None
    patterns = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            patterns.append(re.compile(text, re.IGNORECASE))
        except re.error as err:
            raise StrategyError(f"{path}:{number}: not a regular expression ({err})") from None
    if not patterns:
        raise StrategyError(f"{path}: the rules file has no patterns")
    return patterns


class Rules(Strategy):
    name = "rules"

    def __init__(self, *, path: str = "") -> None:
        if not path:
            raise StrategyError("strategy 'rules' needs a rules file: --option path=FILE, or [select] rules in "
                                "curate.toml")
        self.path = path
        self.patterns = read_rules(Path(path))

    @property
    def criterion(self) -> str:  # type: ignore[override]
        return f"matches most of the {len(self.patterns)} rules in {Path(self.path).name}"

    def rank(self, pool: PoolView, budget: int, rng: np.random.Generator) -> np.ndarray:
        if pool.texts is None:
            raise StrategyError(f"strategy '{self.name}' needs the pool's texts")
        matches = np.array([sum(bool(p.search(text)) for p in self.patterns) for text in pool.texts], dtype=float)
        return top(matches, pool.available, budget, rng)
