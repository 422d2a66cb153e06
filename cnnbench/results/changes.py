"""Change points in a short series of per-run figures (a test's speedup over its saved runs).

Detection is ruptures' PELT on a mean-shift (L2) cost with a penalty of ``PENALTY * sigma^2 * ln n``,
``sigma`` being the run-to-run noise; ruptures gives no significance, so each change point it finds
is then tested with Welch's t-test between its two neighbouring segments and the weakest one is
merged away, one at a time, while any has a p-value above ``ALPHA`` or a relative change below
``MIN_CHANGE`` (the merge step of Hunter, now Apache Otava). The p-values are nominal: the split
was chosen on the same data, so they are optimistic, as Otava's are.

No segment is shorter than ``MIN_RUNS``: one odd run can neither make a level nor end one, and a
new level shows only once it has held for that many runs. Deterministic: the same series always
gives the same change points.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

MIN_RUNS = 3  # the fewest runs a level has; also the fewest a history needs to be judged
PENALTY = 3.0  # times sigma^2 ln n: see docs/history.md for what it finds and misses
ALPHA = 0.05
MIN_CHANGE = 0.01  # a change point moves the level by at least 1%
Z95 = 3.92  # a normal 95% interval is this many standard deviations wide
MAD_TO_SD = 0.6744897501960817  # the normal distribution's 75th percentile


@dataclass(frozen=True)
class Segment:
    """Runs ``start`` to ``end - 1`` of a series, one level."""

    start: int
    end: int
    level: float  # the median of its runs' figures

    @property
    def runs(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class ChangePoint:
    index: int  # the first run of the new level
    before: float  # the level before: the median of the segment before
    after: float  # the level from here: the median of the segment after
    p_value: float  # Welch's t-test, the segment before against the one after (nominal)

    @property
    def change(self) -> float:
        """Relative: -0.1 is a level 10% lower."""
        return self.after / self.before - 1


def noise(values: Sequence[float], intervals: Sequence[tuple[float, float]] = ()) -> float:
    """The run-to-run noise as a standard deviation: the larger of what the runs' own 95% intervals
    say (their median width / 3.92) and the spread of the differences between neighbouring runs
    (their MAD, as a normal standard deviation, / sqrt 2). The intervals miss drift between runs;
    the differences see it but are unsteady on a short series; a level shift moves one difference
    and one odd run two, so neither moves their median much."""
    within = statistics.median(hi - lo for lo, hi in intervals) / Z95 if intervals else 0.0
    steps = [b - a for a, b in pairwise(values)]
    if not steps:
        return within
    centre = statistics.median(steps)
    between = statistics.median(abs(step - centre) for step in steps) / MAD_TO_SD / math.sqrt(2)
    return max(within, between)


def _welch(before: Sequence[float], after: Sequence[float]) -> float:
    from scipy.stats import ttest_ind_from_stats

    mean_a, mean_b = statistics.fmean(before), statistics.fmean(after)
    var_a, var_b = statistics.variance(before), statistics.variance(after)
    if var_a / len(before) + var_b / len(after) == 0:  # both flat: the test would divide by zero
        return 1.0 if mean_a == mean_b else 0.0
    test = ttest_ind_from_stats(
        mean_a, math.sqrt(var_a), len(before), mean_b, math.sqrt(var_b), len(after), equal_var=False
    )
    return float(test.pvalue)


def _described(values: Sequence[float], ends: list[int]) -> list[ChangePoint]:
    edges = [0, *ends, len(values)]
    out = []
    for start, index, end in zip(edges[:-2], edges[1:-1], edges[2:], strict=True):
        before, after = values[start:index], values[index:end]
        out.append(ChangePoint(index, statistics.median(before), statistics.median(after), _welch(before, after)))
    return out


def change_points(values: Sequence[float], sigma: float) -> list[ChangePoint]:
    """The level shifts in ``values`` (oldest run first), in order; ``sigma``: the run-to-run noise."""
    values = [float(v) for v in values]
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError("change points need positive, finite figures")
    if len(values) < 2 * MIN_RUNS:
        return []
    import numpy as np
    import ruptures

    sigma = max(sigma, 1e-9 * max(values))  # a flat series still needs a positive penalty
    fitted = ruptures.Pelt(model="l2", min_size=MIN_RUNS, jump=1).fit(np.asarray(values))
    ends = [int(end) for end in fitted.predict(pen=PENALTY * sigma**2 * math.log(len(values)))[:-1]]
    while True:
        found = _described(values, ends)
        weak = [i for i, point in enumerate(found) if point.p_value > ALPHA or abs(point.change) < MIN_CHANGE]
        if not weak:
            return found
        del ends[max(weak, key=lambda i: (found[i].p_value, -abs(found[i].change)))]


def segments(values: Sequence[float], points: Sequence[ChangePoint]) -> list[Segment]:
    """The levels between the change points, oldest first; none for an empty series."""
    edges = [0, *(point.index for point in points), len(values)]
    return [Segment(a, b, statistics.median(values[a:b])) for a, b in pairwise(edges) if b > a]
