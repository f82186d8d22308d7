"""The 95 % intervals of the figures: Wilson for shares of probes, a
percentile bootstrap resampling probes (scipy.stats.bootstrap, seeded) for
means, medians and ratios, and a cluster bootstrap for the national
references' means over samples. What SQL is the wrong tool for."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats  # type: ignore[import-untyped]

from analysis import constants as k


def wilson(successes: int, n: int, confidence: float = k.CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a share, within [0, 1]; a share of exactly 0
    (1) has its lower (upper) bound exactly 0 (1)."""
    if n == 0:
        return (math.nan, math.nan)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # At p = 0 (1) the bound is 0 (1) in exact arithmetic, but centre - half
    # rounds to 5.55e-17 (and centre + half to 0.9999999999999999).
    low = 0.0 if successes <= 0 else min(1.0, max(0.0, centre - half))
    high = 1.0 if successes >= n else min(1.0, max(0.0, centre + half))
    return (low, high)


def bootstrap_interval(
    samples: Sequence[Sequence[float]],
    statistic: Callable[..., Any],
    seed: int,
) -> tuple[float | None, float | None]:
    """95 % percentile bootstrap interval, resampling the probes of each sample."""
    # Sorted: the probes come in the order DuckDB's parallel scan gave them,
    # and the same seed must give the same interval for the same probes.
    arrays = [np.sort(np.asarray(s, dtype=float)) for s in samples]
    if any(a.size < 2 for a in arrays):
        return (None, None)
    if all(np.all(a == a[0]) for a in arrays) and len(arrays) == 1:
        value = float(statistic(arrays[0], axis=-1))
        return (value, value)
    result = stats.bootstrap(
        tuple(arrays),
        statistic,
        n_resamples=k.BOOTSTRAP_RESAMPLES,
        confidence_level=k.CONFIDENCE,
        method="percentile",
        vectorized=True,
        paired=False,
        rng=np.random.default_rng(seed),
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def mean(a: Any, axis: int = -1) -> Any:
    """The mean along an axis, as scipy.stats.bootstrap calls a statistic."""
    return np.mean(a, axis=axis)


def median(a: Any, axis: int = -1) -> Any:
    """The median along an axis, as scipy.stats.bootstrap calls a statistic."""
    return np.median(a, axis=axis)


def ratio_of_means(a: Any, b: Any, axis: int = -1) -> Any:
    """mean(a) / mean(b) along an axis: a figure over its baseline."""
    return np.mean(a, axis=axis) / np.mean(b, axis=axis)


def _ratio_of_sums(a: Any, b: Any, axis: int = -1) -> Any:
    return np.sum(a, axis=axis) / np.sum(b, axis=axis)


def sample_mean_interval(
    sums: Sequence[float], counts: Sequence[float], seed: int
) -> tuple[float | None, float | None]:
    """95 % percentile bootstrap interval of a mean over samples (sum of the
    probes' sums over the sum of their counts), resampling probes with their
    samples (a cluster bootstrap: one probe's tests are not independent)."""
    order = np.lexsort((np.asarray(counts, dtype=float), np.asarray(sums, dtype=float)))
    a = np.asarray(sums, dtype=float)[order]
    b = np.asarray(counts, dtype=float)[order]
    if a.size < 2:
        return (None, None)
    ratios = a / b
    if np.all(ratios == ratios[0]):
        return (float(ratios[0]), float(ratios[0]))
    result = stats.bootstrap(
        (a, b),
        _ratio_of_sums,
        n_resamples=k.BOOTSTRAP_RESAMPLES,
        confidence_level=k.CONFIDENCE,
        method="percentile",
        vectorized=True,
        paired=True,
        rng=np.random.default_rng(seed),
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))
