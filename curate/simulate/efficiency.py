"""Arithmetic on learning curves (accuracy against labels): the labels a curve needs to reach a target,
the label-efficiency ratio of a strategy against random with its bootstrap interval, the accuracy a strategy
gains over random at a fixed budget with its interval, and the stopping rule that says when more labels stopped
paying."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from curate.errors import CurateError

BOOTSTRAP = 1000
STOP_WINDOW = 3  # rounds the stopping rule averages the gain over
STOP_GAIN = 0.005  # accuracy per 100 labels below which more labels stopped paying


def labels_to_reach(labels: Sequence[int], curve: Sequence[float], target: float) -> float | None:
    """Labels at which ``curve`` first reaches ``target`` (linear between rounds), None if it never does."""
    for i, accuracy in enumerate(curve):
        if accuracy >= target:
            if i == 0:
                return float(labels[0])
            before, gain = curve[i - 1], accuracy - curve[i - 1]
            return float(labels[i - 1] + (labels[i] - labels[i - 1]) * (target - before) / gain)
    return None


def label_efficiency(labels: Sequence[int], random_curve: Sequence[float], curve: Sequence[float],
                     target: float) -> float | None:
    """Labels random needs ÷ labels the strategy needs to reach ``target``; None if either never does."""
    random_needs, needs = labels_to_reach(labels, random_curve, target), labels_to_reach(labels, curve, target)
    return None if random_needs is None or needs is None else random_needs / needs


def bootstrap_interval(labels: Sequence[int], random_curves: np.ndarray, curves: np.ndarray, target: float,
                       *, seed: int = 0) -> list[float] | None:
    """80% interval of the ratio over resamples of the split x seed runs (paired: one resample for both);
    None where more than a fifth of the resamples never reach the target."""
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, len(curves), len(curves))
        ratio = label_efficiency(labels, random_curves[pick].mean(0), curves[pick].mean(0), target)
        ratios.append(np.nan if ratio is None else ratio)
    values = np.array(ratios)
    if np.isnan(values).mean() > 0.2:
        return None
    return [float(np.nanpercentile(values, 10)), float(np.nanpercentile(values, 90))]


def gain_over_random(labels: Sequence[int], random_curves: np.ndarray, curves: np.ndarray, at: float, *,
                     seed: int = 0) -> tuple[float, list[float]]:
    """Mean accuracy a strategy gains over random at ``at`` labels (each run's curve read there, linear between
    rounds) and its 80% interval over resamples of the paired split x seed runs (run i of both is the same split
    and seed)."""
    gains = (np.array([np.interp(at, labels, curve) for curve in curves])
             - np.array([np.interp(at, labels, curve) for curve in random_curves]))
    means = gains[np.random.default_rng(seed).integers(0, len(gains), (BOOTSTRAP, len(gains)))].mean(1)
    return float(gains.mean()), [float(np.percentile(means, 10)), float(np.percentile(means, 90))]


def stopping_point(labels: Sequence[int], curve: Sequence[float], *, gain: float = STOP_GAIN,
                   window: int = STOP_WINDOW) -> int | None:
    """Labels at which the rule says stop: the first round whose mean gain over the last ``window`` rounds
    is below ``gain`` accuracy per 100 labels (the plateau began ``window`` rounds earlier); None while
    the curve still climbs."""
    if not gain > 0 or window < 1:
        raise CurateError(f"the stopping rule needs a positive gain and window, not {gain} and {window}")
    for i in range(window, len(curve)):
        per_hundred = 100 * (curve[i] - curve[i - window]) / (labels[i] - labels[i - window])
        if per_hundred < gain:
            return int(labels[i])
    return None
