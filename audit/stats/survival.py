"""Time to removal as interval-censored data: the Turnbull estimator.

A probe is looked at from time to time, so its removal time is only known to lie between the last
look that still saw it and the first look that found it gone: the interval ``(left, right]``. A
probe still up when watching stopped is right-censored, ``(left, inf)``; a removal seen the instant
it happened (a push notification, say) is exact, ``left == right``.

Turnbull (1976) showed that the nonparametric maximum likelihood estimate (NPMLE) of the
distribution of such times puts all its mass on the *innermost* (Turnbull) intervals: the
intervals that open at some observation's left end and close at the next right end, with no
other end point in between. Inside one of them the estimate is not identified — any placement of
the mass gives the same likelihood — so :meth:`SurvivalEstimate.cdf` returns a lower and an upper
value. With exact and right-censored data only, the NPMLE is the Kaplan–Meier estimate.

The masses are found by Turnbull's self-consistency iteration, an EM algorithm: each probe spreads
its unit of probability over the innermost intervals it covers in proportion to the current
masses; the new mass of an interval is the average share it receives. Every observation covers a
contiguous run of innermost intervals, so one iteration costs O(observations + intervals) with
cumulative sums rather than an observations-by-intervals matrix; identical observations are
merged and weighted. 10,000 observations on a polling grid take a few milliseconds.

Uncertainty: :func:`quantile_interval` and :func:`cdf_interval` use a seeded nonparametric
bootstrap (resampling probes with replacement, refitting the NPMLE). When every probe's status at
the time asked about is known (no observation interval straddles it), ``cdf_interval`` returns
the exact Clopper–Pearson interval instead, because the count removed by then is binomial.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import isotonic_regression

from audit.stats.binomial import clopper_pearson

__all__ = [
    "CensoredTime",
    "SurvivalEstimate",
    "cdf_interval",
    "quantile_interval",
    "quantile_intervals",
    "turnbull",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_MASS_TOL = 1e-9  # slack when comparing cumulative masses with a probability


@dataclass(frozen=True)
class CensoredTime:
    """A removal that happened in ``(left, right]``; ``right = inf`` if never seen removed.

    ``left == right`` is an exactly observed removal time. Times are non-negative (seconds or
    hours since the probe was posted; the unit is the caller's).
    """

    left: float
    right: float

    def __post_init__(self) -> None:
        if not isinstance(self.left, (int, float)) or not math.isfinite(self.left):
            raise ValueError(f"'left' must be a finite number (got {self.left!r})")
        if not isinstance(self.right, (int, float)) or math.isnan(self.right):
            raise ValueError(f"'right' must be a number or math.inf (got {self.right!r})")
        if self.left < 0:
            raise ValueError(f"'left' must be 0 or more (got {self.left!r})")
        if self.right < self.left:
            raise ValueError(
                f"'right' must be at or after 'left' (got left={self.left!r}, right={self.right!r})"
            )

    @property
    def exact(self) -> bool:
        """Whether the removal time is known exactly."""
        return self.left == self.right

    @property
    def right_censored(self) -> bool:
        """Whether the probe was still up when watching stopped."""
        return math.isinf(self.right)


@dataclass(frozen=True)
class SurvivalEstimate:
    """The Turnbull NPMLE: probability ``masses`` on disjoint, sorted ``intervals``.

    Each interval ``(a, b)`` stands for the half-open ``(a, b]``, or for the single time ``a``
    when ``a == b``. Mass on ``(x, inf)`` is the share never seen removed within observation.
    ``n`` is the number of observations; ``iterations`` and ``converged`` report the EM run.
    """

    intervals: tuple[tuple[float, float], ...]
    masses: tuple[float, ...]
    n: int
    iterations: int
    converged: bool

    def cdf(self, t: float) -> tuple[float, float]:
        """Lower and upper value of ``F(t) = P(removed by t)`` over all NPMLEs.

        The lower value counts only mass whose interval ends by ``t``; the upper value also counts
        mass whose interval starts before ``t`` (that mass *could* all lie at or before ``t``).
        """
        lower = upper = 0.0
        for (a, b), mass in zip(self.intervals, self.masses, strict=True):
            if b <= t:
                lower += mass
            if a < t or (a == b and a <= t):
                upper += mass
        return min(lower, 1.0), min(upper, 1.0)

    def cdf_many(self, times: Sequence[float]) -> list[tuple[float, float]]:
        """:meth:`cdf` at each of ``times``, in O((intervals + times) log intervals).

        The intervals are disjoint and sorted, so the masses counted at ``t`` are a leading run
        of them, and their running sum (added in the same order as :meth:`cdf` adds them) gives
        the same values to the last bit.
        """
        if not self.masses:
            return [(0.0, 0.0) for _ in times]
        ends = np.array(self.intervals, dtype=np.float64)
        a, b = ends[:, 0], ends[:, 1]
        if not _leading_runs(a, b):  # pragma: no cover - intervals are built sorted
            return [self.cdf(t) for t in times]
        running = np.concatenate(([0.0], np.cumsum(np.array(self.masses, dtype=np.float64))))
        t = np.asarray(times, dtype=np.float64)
        lows = np.searchsorted(b, t, side="right")
        highs = np.searchsorted(a, t, side="left")
        at = np.minimum(highs, a.size - 1)
        highs = highs + ((highs < a.size) & (a[at] == b[at]) & (a[at] == t))
        lower = np.minimum(running[lows], 1.0).tolist()
        upper = np.minimum(running[highs], 1.0).tolist()
        return list(zip(lower, upper, strict=True))

    def quantile(self, p: float) -> float | None:
        """Time by which a share ``p`` is surely removed under the NPMLE, or ``None``.

        Convention: the smallest ``t`` with lower ``F(t) >= p``, which is the right end of the
        Turnbull interval where the cumulative mass first reaches ``p``. It is the conservative
        (latest) reading, suited to a deadline question. ``None`` when the mass reaches ``p`` only
        on the interval running to infinity: that share was never seen removed.
        """
        if not isinstance(p, (int, float)) or not 0.0 < p <= 1.0:
            raise ValueError(f"'p' must be a probability in (0, 1] (got {p!r})")
        cumulative = 0.0
        for (_, b), mass in zip(self.intervals, self.masses, strict=True):
            cumulative += mass
            if cumulative >= p - _MASS_TOL:
                return None if math.isinf(b) else b
        return None


def _leading_runs(a: FloatArray, b: FloatArray) -> bool:
    """Whether the intervals counted by :meth:`SurvivalEstimate.cdf` at any ``t`` lead the
    list: both ends non-decreasing, and a point interval never after a wider one starting at
    the same time."""
    if not (np.all(np.diff(a) >= 0) and np.all(np.diff(b) >= 0)):
        return False
    point = a == b
    return not bool(np.any(point[1:] & ~point[:-1] & (a[1:] == a[:-1])))


@dataclass(frozen=True)
class _Prepared:
    """Distinct observations with their counts, in arrays."""

    left: FloatArray
    right: FloatArray
    exact: BoolArray
    weight: FloatArray


def _prepare(data: Sequence[CensoredTime]) -> _Prepared:
    if len(data) == 0:
        raise ValueError("'data' must hold at least one observation (got none)")
    for item in data:
        if not isinstance(item, CensoredTime):
            raise ValueError(f"'data' must hold CensoredTime values (got {item!r})")
    pairs = np.array([(item.left, item.right) for item in data], dtype=np.float64)
    unique, counts = np.unique(pairs, axis=0, return_counts=True)
    left = np.ascontiguousarray(unique[:, 0])
    right = np.ascontiguousarray(unique[:, 1])
    return _Prepared(left, right, left == right, counts.astype(np.float64))


def _innermost(obs: _Prepared) -> tuple[FloatArray, FloatArray]:
    """Turnbull intervals ``(q, p]`` (or points ``q == p``), sorted.

    End points are sorted by value; at equal values an exact observation's opening comes first,
    then closings, then ordinary openings — so ``(a, t]`` and ``(t, b]`` do not overlap while the
    point ``t`` lies inside ``(a, t]``. An innermost interval is an opening followed directly by a
    closing.
    """
    n = obs.left.size
    values = np.concatenate([obs.left, obs.right])
    rank = np.concatenate([np.where(obs.exact, 0, 2), np.ones(n, dtype=np.int64)])
    is_close = np.concatenate([np.zeros(n, dtype=bool), np.ones(n, dtype=bool)])
    order = np.lexsort((rank, values))
    values, is_close = values[order], is_close[order]
    starts = np.flatnonzero(~is_close[:-1] & is_close[1:])
    return values[starts], values[starts + 1]


def _coverage(obs: _Prepared, q: FloatArray, p: FloatArray) -> tuple[IntArray, IntArray]:
    """For each observation, the run ``[first, stop)`` of innermost intervals inside it."""
    point = q == p
    # Intervals are disjoint and sorted, so q and p are both non-decreasing.
    first_regular = np.searchsorted(q, obs.left, side="left")
    first_point = np.searchsorted(q, obs.left, side="right")
    # The first interval inside an ordinary observation (l, r]: a regular one with q >= l, or a
    # point one with q > l. Both orders agree except at a point interval sitting exactly at l.
    first = first_regular.copy()
    at_left = (first_regular < q.size) & (first_regular < first_point)
    shift = at_left & point[np.minimum(first_regular, q.size - 1)]
    first[shift] += 1
    stop = np.searchsorted(p, obs.right, side="right")
    # An exact observation at t covers only the point interval at t.
    exact_first = np.searchsorted(q, obs.left, side="left")
    first = np.where(obs.exact, exact_first, first)
    stop = np.where(obs.exact, exact_first + 1, stop)
    return first.astype(np.int64), stop.astype(np.int64)


@dataclass(frozen=True)
class _Runs:
    """Observations as runs ``[first, stop)`` of innermost intervals, with weights."""

    first: IntArray
    stop: IntArray
    weight: FloatArray
    m: int

    def step(self, mass: FloatArray) -> tuple[FloatArray, float, FloatArray]:
        """One self-consistency (EM) step: new masses, log-likelihood of ``mass``, gradient.

        The gradient entry ``j`` is ``sum_i w_i [j in run i] / P_i / W``, where ``P_i`` is the
        probability ``mass`` gives observation ``i``. The EM update multiplies ``mass`` by it.
        """
        cumulative = np.concatenate(([0.0], mass.cumsum()))
        covered = np.maximum(cumulative[self.stop] - cumulative[self.first], _TINY)
        ratio = self.weight / covered
        delta = np.bincount(self.first, ratio, self.m + 1)
        delta -= np.bincount(self.stop, ratio, self.m + 1)
        gradient = delta.cumsum()[: self.m] / self.weight.sum()
        new = mass * gradient
        new /= new.sum()
        return new, _weighted_sum(self.weight, np.log(covered)), gradient


_TINY = float(np.finfo(np.float64).tiny)
_KKT_SLACK = 1e-6  # a zero mass whose gradient exceeds 1 by more than this is revived
_LINE_SEARCH_HALVINGS = 20
_STALLED_REVIVALS = 20  # revivals in a row that raise the likelihood by no more than _LL_GAIN
_LL_GAIN = 1e-9


def _weighted_sum(weight: FloatArray, values: FloatArray) -> float:
    """``sum(weight * values)``, without BLAS: numpy's dot hands vectors of more than a few
    thousand elements to OpenBLAS threads, whose start-up costs more than the sum itself."""
    return float((weight * values).sum())


def _log_likelihood(runs: _Runs, mass: FloatArray) -> float:
    cumulative = np.concatenate(([0.0], mass.cumsum()))
    covered = cumulative[runs.stop] - cumulative[runs.first]
    if (covered <= 0.0).any():
        return -math.inf
    return _weighted_sum(runs.weight, np.log(covered))


def _icm_step(runs: _Runs, mass: FloatArray, ll: float) -> FloatArray:
    """One iterative-convex-minorant step on the distribution function (Groeneboom & Wellner).

    With ``F_k`` the cumulative mass before interval ``k``, the log-likelihood is
    ``sum_i w_i log(F[stop_i] - F[first_i])``. A Newton step with the diagonal of the Hessian,
    projected onto non-decreasing ``F`` by weighted isotonic regression, gives a proposal; it is
    halved towards the current point until the likelihood does not fall.
    """
    m = runs.m
    cumulative = np.concatenate(([0.0], mass.cumsum()))
    cumulative[-1] = 1.0
    covered = np.maximum(cumulative[runs.stop] - cumulative[runs.first], _TINY)
    ratio = runs.weight / covered
    curvature = runs.weight / covered**2
    gradient = np.bincount(runs.stop, ratio, m + 1) - np.bincount(runs.first, ratio, m + 1)
    hessian = np.bincount(runs.stop, curvature, m + 1) + np.bincount(runs.first, curvature, m + 1)
    inner = slice(1, m)  # F_0 = 0 and F_m = 1 are fixed
    weights = np.maximum(hessian[inner], _TINY)
    target = cumulative[inner] + gradient[inner] / weights
    proposal: FloatArray = isotonic_regression(target, weights=weights).x.clip(0.0, 1.0)
    current = cumulative[inner]
    step = 1.0
    for _ in range(_LINE_SEARCH_HALVINGS):
        ends = np.concatenate(([0.0], current + step * (proposal - current), [1.0]))
        trial: FloatArray = np.maximum(ends[1:] - ends[:-1], 0.0)  # np.diff, minus overhead
        trial /= trial.sum()
        if _log_likelihood(runs, trial) >= ll:
            return trial
        step /= 2.0
    return mass


def _em(runs: _Runs, tol: float, max_iter: int) -> tuple[FloatArray, int, bool]:
    """Turnbull's self-consistency (EM) iteration, sped up by ICM steps; masses, rounds, flag.

    Each round is one EM step followed by one ICM step (the EM-ICM hybrid of Wellner & Zhan
    1997): EM alone needs many thousands of steps when most innermost intervals end with zero
    mass, ICM moves whole blocks of mass at once. Convergence is Turnbull's: one EM step moves no
    mass by more than ``tol``. At the NPMLE every gradient entry is at most 1, with equality
    where the mass is positive (Gentleman & Geyer 1994); a zero mass that violates this is given
    back a little mass and the iteration resumes. When revivals no longer raise the likelihood
    (by more than ``_LL_GAIN``, ``_STALLED_REVIVALS`` times in a row) the violation is below what
    ``tol`` resolves — the ICM step takes the mass straight back — and the iteration stops as
    converged rather than cycling until ``max_iter``.
    """
    # Start: each observation spreads its weight evenly over the intervals it covers.
    share = runs.weight / (runs.stop - runs.first)
    delta = np.bincount(runs.first, share, runs.m + 1) - np.bincount(runs.stop, share, runs.m + 1)
    mass = np.cumsum(delta)[: runs.m]
    mass = np.maximum(mass, 0.0) / mass.sum()
    stalled, revived_at = 0, -math.inf
    for iteration in range(1, max_iter + 1):
        new, ll, gradient = runs.step(mass)
        if float(abs(new - mass).max()) < tol:
            revive = (new <= tol) & (gradient > 1.0 + _KKT_SLACK)
            if not revive.any():
                return new, iteration, True
            stalled = stalled + 1 if ll <= revived_at + _LL_GAIN else 0
            if stalled >= _STALLED_REVIVALS:
                return new, iteration, True
            revived_at = max(revived_at, ll)
            new = np.where(revive, np.maximum(new, tol), new)
            new /= new.sum()
        mass = _icm_step(runs, new, _log_likelihood(runs, new))
    return mass, max_iter, False


@dataclass(frozen=True)
class _Masses:
    """An NPMLE as arrays: Turnbull intervals ``(q, p]`` and their masses."""

    q: FloatArray
    p: FloatArray
    mass: FloatArray
    iterations: int
    converged: bool

    def quantile(self, share: float) -> float:
        """:meth:`SurvivalEstimate.quantile`, with "never reached" as ``inf``; the running sum
        adds the masses in the same order, so the value is the same."""
        reached = np.flatnonzero(np.cumsum(self.mass) >= share - _MASS_TOL)
        return float(self.p[reached[0]]) if reached.size else math.inf


def _fit_masses(obs: _Prepared, tol: float, max_iter: int) -> _Masses:
    q, p = _innermost(obs)
    first, stop = _coverage(obs, q, p)
    if np.any(stop <= first):  # pragma: no cover - would be a bug in _innermost/_coverage
        raise RuntimeError("an observation covers no Turnbull interval")
    runs = _Runs(first, stop, obs.weight, q.size)
    mass, iterations, converged = _em(runs, tol, max_iter)
    mass[mass < tol * 1e-3] = 0.0
    mass /= mass.sum()
    return _Masses(q, p, mass, iterations, converged)


def _fit(obs: _Prepared, tol: float, max_iter: int) -> SurvivalEstimate:
    fit = _fit_masses(obs, tol, max_iter)
    return SurvivalEstimate(
        intervals=tuple(zip(fit.q.tolist(), fit.p.tolist(), strict=True)),
        masses=tuple(fit.mass.tolist()),
        n=round(float(obs.weight.sum())),
        iterations=fit.iterations,
        converged=fit.converged,
    )


def turnbull(
    data: Sequence[CensoredTime], *, tol: float = 1e-8, max_iter: int = 10_000
) -> SurvivalEstimate:
    """Turnbull's NPMLE of the removal-time distribution from interval-censored data.

    The iteration stops when no mass moves by more than ``tol`` in one step, or after
    ``max_iter`` steps (then ``converged`` is ``False``).
    """
    if not tol > 0:
        raise ValueError(f"'tol' must be positive (got {tol!r})")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"'max_iter' must be a positive integer (got {max_iter!r})")
    return _fit(_prepare(data), tol, max_iter)


def _check_level(level: float) -> None:
    if not isinstance(level, (int, float)) or not 0.0 < level < 1.0:
        raise ValueError(f"'level' must be strictly between 0 and 1 (got {level!r})")


def _check_resamples(resamples: int) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 10:
        raise ValueError(f"'resamples' must be an integer of at least 10 (got {resamples!r})")


def _bootstrap_samples(obs: _Prepared, resamples: int, seed: int) -> Iterator[_Prepared]:
    """``resamples`` bootstrap samples (probes drawn with replacement), as weighted distinct
    observations."""
    rng = np.random.default_rng(seed)
    n = round(float(obs.weight.sum()))
    probabilities = obs.weight / obs.weight.sum()
    for _ in range(resamples):
        counts = rng.multinomial(n, probabilities).astype(np.float64)
        keep = counts > 0
        yield _Prepared(obs.left[keep], obs.right[keep], obs.exact[keep], counts[keep])


def _bootstrap_fits(
    obs: _Prepared, resamples: int, seed: int, tol: float, max_iter: int
) -> list[SurvivalEstimate]:
    """NPMLEs of ``resamples`` bootstrap samples (probes drawn with replacement)."""
    return [_fit(sample, tol, max_iter) for sample in _bootstrap_samples(obs, resamples, seed)]


def quantile_interval(
    data: Sequence[CensoredTime],
    p: float,
    level: float = 0.95,
    *,
    resamples: int = 1000,
    seed: int = 0,
    tol: float = 1e-6,
    max_iter: int = 10_000,
) -> tuple[float | None, float | None]:
    """Percentile-bootstrap interval for the time by which a share ``p`` is removed.

    Probes are resampled with replacement (numpy ``default_rng(seed)``), the NPMLE refitted and
    :meth:`SurvivalEstimate.quantile` taken; the interval runs between the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` empirical quantiles of those values, with "never reached" counted as
    infinitely late. An end that is never reached is ``None``. The bootstrap is a practical
    choice, not an exact one: under interval censoring the NPMLE converges slowly and bootstrap
    intervals can under-cover for small samples — treat them as a guide, and verdicts rely on the
    exact binomial bounds instead.
    """
    (interval,) = quantile_intervals(
        data, [p], level, resamples=resamples, seed=seed, tol=tol, max_iter=max_iter
    )
    return interval


def quantile_intervals(
    data: Sequence[CensoredTime],
    ps: Sequence[float],
    level: float = 0.95,
    *,
    resamples: int = 1000,
    seed: int = 0,
    tol: float = 1e-6,
    max_iter: int = 10_000,
) -> list[tuple[float | None, float | None]]:
    """:func:`quantile_interval` for each share in ``ps``, from one set of resamples.

    Each interval is exactly the one :func:`quantile_interval` gives for its share with the same
    ``seed``: the resamples are the same, only fitted once for all the shares.
    """
    _check_level(level)
    _check_resamples(resamples)
    for p in ps:
        if not isinstance(p, (int, float)) or not 0.0 < p <= 1.0:
            raise ValueError(f"'p' must be a probability in (0, 1] (got {p!r})")
    values = np.empty((len(ps), resamples))
    for index, sample in enumerate(_bootstrap_samples(_prepare(data), resamples, seed)):
        fit = _fit_masses(sample, tol, max_iter)
        values[:, index] = [fit.quantile(p) for p in ps]
    tail = (1.0 - level) / 2.0
    intervals = []
    for row in values:
        low, high = np.quantile(row, [tail, 1.0 - tail], method="inverted_cdf")
        intervals.append((_finite_or_none(float(low)), _finite_or_none(float(high))))
    return intervals


def _status_known(obs: _Prepared, t: float) -> bool:
    """Whether every observation says for sure if the probe was removed by ``t``."""
    return not bool(np.any((obs.left < t) & (t < obs.right)))


def cdf_interval(
    data: Sequence[CensoredTime],
    t: float,
    level: float = 0.95,
    *,
    resamples: int = 1000,
    seed: int = 0,
    tol: float = 1e-6,
    max_iter: int = 10_000,
) -> tuple[float, float]:
    """Interval for ``F(t) = P(removed by t)``.

    If every probe's status at ``t`` is known (none has ``left < t < right``), the number removed
    by ``t`` is binomial and the exact two-sided Clopper–Pearson interval is returned. Otherwise a
    seeded percentile bootstrap is used: the low end from the bootstrap distribution of the lower
    value of ``F(t)``, the high end from that of the upper value, so the interval also spans the
    part of ``F`` that the data cannot identify.
    """
    _check_level(level)
    _check_resamples(resamples)
    if not isinstance(t, (int, float)) or math.isnan(t):
        raise ValueError(f"'t' must be a number (got {t!r})")
    obs = _prepare(data)
    if _status_known(obs, t):
        n = round(float(obs.weight.sum()))
        removed = round(float(obs.weight[obs.right <= t].sum()))
        interval = clopper_pearson(removed, n, level)
        return interval.low, interval.high
    fits = _bootstrap_fits(obs, resamples, seed, tol, max_iter)
    bounds = np.array([fit.cdf(t) for fit in fits])
    tail = (1.0 - level) / 2.0
    low = float(np.quantile(bounds[:, 0], tail, method="inverted_cdf"))
    high = float(np.quantile(bounds[:, 1], 1.0 - tail, method="inverted_cdf"))
    return max(0.0, low), min(1.0, high)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
