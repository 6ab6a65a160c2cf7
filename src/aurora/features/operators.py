"""The operators of feature expressions beyond arithmetic (see `aurora.features.expr`).

Time series (per symbol, causal, a window of n sessions: look-back + n - 1; `Ref` + n):
`Ref(x, n)`, `Delta(x, n)`, `Mean`, `Sum`, `Std` (ddof 1), `Var` (ddof 1), `Min`, `Max`,
`Median`, `Quantile(x, n, q)`, `EMA(x, n)` (weights (1 - a)^k, a = 2 / (n + 1), over the
window's bars present), `Skew` and `Kurt` (bias-corrected, as pandas' rolling ones),
`Corr(x, y, n)`, `Cov`, `Beta(x, y, n)` (OLS slope of x on y), `Resid(x, y, n)`
(x - Beta(x, y, n) y), `Slope(x, n)` and `Rsquare(x, n)` (regression of x on time).
Every window statistic needs 80% of its window present (`ops.min_obs`).

Cross-sectional (per date, over the members present; `by=sector` within sectors):
`Rank(x)` (percentile, average ties, in (0, 1]), `ZScore(x)` (ddof 1; missing when the
spread is 0), `Demean(x)`, `Winsorize(x, q)` (clipped to the q and 1 - q quantiles).

Market: `Market(x)`, the equal-weight mean of x over the members present on each date, the
same for every symbol.

`custom(fn, *inputs, lookback=n)`: `fn(*arrays)` on (symbols x sessions) float64 arrays
(the whole panel; on a tail, from `lookback` sessions before the first column needed),
returning one such array; `lookback` is the sessions of history it reads before t (its
inputs' look-backs are added). Its causality is proven by the build's perturbation test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import bottleneck as bn
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from aurora.features import ops
from aurora.features.expr import Context, Expr, Group, _number, _Unary, sector


def _window(n: Any, name: str, least: int = 1) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < least:
        raise ValueError(f"{name}: the window must be an integer >= {least}, got {n!r}")
    return n


class _Series(Expr):
    """A per-symbol time-series operator over a window of `n` sessions: `kernel(*inputs, n)`
    unless it computes otherwise."""

    kind = "series"
    least = 1  # the smallest window
    lag = False  # a lag of n sessions reads n before t; a window of n reads n - 1
    kernel: ClassVar[Callable[..., np.ndarray]]

    def __init__(self, x: Any, n: int) -> None:
        self._series(x, n=n)

    def _series(self, *inputs: Any, n: int, extra: tuple[Any, ...] = ()) -> None:
        self.n = _window(n, type(self).__name__, self.least)
        self.window = self.n if self.lag else self.n - 1
        Expr.__init__(self, *inputs, params=(self.n, *extra))

    def compute(self, args: Sequence[np.ndarray], ctx: Context) -> np.ndarray:
        return type(self).kernel(*args, self.n)


class Ref(_Series):
    """x at n sessions before t."""

    lag = True
    kernel = staticmethod(ops.shift)


class Delta(Ref):
    """x - Ref(x, n)."""

    kernel = staticmethod(lambda x, n: x - ops.shift(x, n))


def _bn(fn: Callable[..., np.ndarray], **kw: Any) -> Callable[[np.ndarray, int], np.ndarray]:
    return lambda x, n: ops.move(fn, x, n, ops.min_obs(n), **kw)


class Mean(_Series):
    kernel = staticmethod(_bn(bn.move_mean))


class Sum(_Series):
    kernel = staticmethod(_bn(bn.move_sum))


class Std(_Series):
    least = 2
    kernel = staticmethod(_bn(bn.move_std, ddof=1))


class Var(_Series):
    least = 2
    kernel = staticmethod(_bn(bn.move_var, ddof=1))


class Min(_Series):
    kernel = staticmethod(_bn(bn.move_min))


class Max(_Series):
    kernel = staticmethod(_bn(bn.move_max))


class Median(_Series):
    kernel = staticmethod(_bn(bn.move_median))


def _views(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(windows, counts): the (rows, cols, n) windows ending at each cell (NaN before the
    first column) and the number of bars present in each."""
    padded = np.hstack([np.full((x.shape[0], n - 1), np.nan), x])
    windows = sliding_window_view(padded, n, axis=1)
    return windows, n - np.isnan(windows).sum(axis=2)


class Quantile(_Series):
    """The q quantile (linear interpolation) of the window's bars present."""

    def __init__(self, x: Any, n: int, q: float) -> None:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"Quantile: q must be within 0..1, got {q!r}")
        self._series(x, n=n, extra=(float(q),))

    def compute(self, args: Sequence[np.ndarray], ctx: Context) -> np.ndarray:
        windows, count = _views(args[0], self.n)
        out = ops.nanquantile(windows, self.params[1], axis=2)[..., 0]
        return np.where(count >= ops.min_obs(self.n), out, np.nan)


class EMA(_Series):
    """Exponentially weighted mean over the window: weight (1 - a)^k on the bar k sessions
    before t, a = 2 / (n + 1), normalised over the bars present."""

    def compute(self, args: Sequence[np.ndarray], ctx: Context) -> np.ndarray:
        x = args[0]
        decay = 1.0 - 2.0 / (self.n + 1)
        total, weight, count = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
        for k in range(self.n):
            lagged = ops.shift(x, k) if k else x
            present = ~np.isnan(lagged)
            w = decay ** k
            total += np.where(present, lagged, 0.0) * w
            weight += present * w
            count += present
        return np.where(count >= ops.min_obs(self.n), total / weight, np.nan)


class _Moment(_Series):
    least = 3

    def moments(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        windows, count = _views(x, self.n)
        # sum / count, not nanmean: no all-NaN warning (filtering one is process-wide)
        dev = windows - np.nansum(windows, axis=2, keepdims=True) / count[..., None]
        m2 = np.nansum(dev ** 2, axis=2) / count
        m3 = np.nansum(dev ** 3, axis=2) / count
        m4 = np.nansum(dev ** 4, axis=2) / count
        return count.astype(np.float64), m2, m3, m4


class Skew(_Moment):
    def compute(self, args: Sequence[np.ndarray], ctx: Context) -> np.ndarray:
        c, m2, m3, _ = self.moments(args[0])
        g = m3 / m2 ** 1.5 * np.sqrt(c * (c - 1)) / (c - 2)
        return np.where((c >= max(3, ops.min_obs(self.n))) & (m2 > 0), g, np.nan)


class Kurt(_Moment):
    least = 4

    def compute(self, args: Sequence[np.ndarray], ctx: Context) -> np.ndarray:
        c, m2, _, m4 = self.moments(args[0])
        g = ((c + 1) * (m4 / m2 ** 2 - 3) + 6) * (c - 1) / ((c - 2) * (c - 3))
        return np.where((c >= max(4, ops.min_obs(self.n))) & (m2 > 0), g, np.nan)


class _Trend(_Series):
    """Regression of x on time (0..n-1) over the window's bars present."""

    least = 2

    def fit(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        windows, count = _views(x, self.n)
        t = np.broadcast_to(np.arange(self.n, dtype=np.float64), windows.shape)
        t = np.where(np.isnan(windows), np.nan, t)
        dt_ = t - np.nansum(t, axis=2, keepdims=True) / count[..., None]  # as in _Moment
        dx = windows - np.nansum(windows, axis=2, keepdims=True) / count[..., None]
        sxy, stt = np.nansum(dt_ * dx, axis=2), np.nansum(dt_ ** 2, axis=2)
        sxx = np.nansum(dx ** 2, axis=2)
        ok = count >= max(2, ops.min_obs(self.n))
        return np.where(ok, sxy, np.nan), stt, sxx


class Slope(_Trend):
    def compute(self, args: Sequence[np.ndarray], ctx: Context) -> np.ndarray:
        sxy, stt, _ = self.fit(args[0])
        return np.where(stt > 0, sxy / stt, np.nan)


class Rsquare(_Trend):
    def compute(self, args: Sequence[np.ndarray], ctx: Context) -> np.ndarray:
        sxy, stt, sxx = self.fit(args[0])
        return np.where((stt > 0) & (sxx > 0), sxy ** 2 / (stt * sxx), np.nan)


class _Pair(_Series):
    least = 2

    def __init__(self, x: Any, y: Any, n: int) -> None:
        self._series(x, y, n=n)


class Corr(_Pair):
    kernel = staticmethod(ops.rcorr)


class Cov(_Pair):
    kernel = staticmethod(ops.rcov)


class Beta(_Pair):
    kernel = staticmethod(ops.rbeta)


class Resid(_Pair):
    """x - Beta(x, y, n) * y: x's part not explained by y (beta as of t)."""

    kernel = staticmethod(lambda x, y, n: x - ops.rbeta(x, y, n) * y)


# -- per date -------------------------------------------------------------------------------
class _Cross(Expr):
    """A per-date operator over the members present (module docstring)."""

    kind = "cross"
    kernel: ClassVar[Callable[..., np.ndarray]]

    def __init__(self, x: Any, by: Group | None = None, extra: tuple[Any, ...] = ()) -> None:
        if by is not None and by is not sector:
            raise ValueError(f"{type(self).__name__}: by must be sector, got {by!r}")
        self.by, self.extra = by, extra
        super().__init__(x, params=(*extra, *(("sector",) if by is not None else ())))

    def compute(self, args: Sequence[np.ndarray], ctx: Context) -> np.ndarray:
        groups = ctx.sector_codes if self.by is not None else None
        return type(self).kernel(_members(args[0], ctx), groups, *self.extra)

    def __repr__(self) -> str:
        shown = [repr(self.inputs[0]), *map(_number, self.extra),
                 *(["sector"] if self.by is not None else [])]
        return f"{type(self).__name__}({', '.join(shown)})"


def _members(x: np.ndarray, ctx: Context) -> np.ndarray:
    return x if ctx.member is None else np.where(ctx.member, x, np.nan)


class Rank(_Cross):
    kernel = staticmethod(ops.cs_pct_rank)


class ZScore(_Cross):
    kernel = staticmethod(ops.cs_zscore)


class Demean(_Cross):
    kernel = staticmethod(ops.cs_demean)


class Winsorize(_Cross):
    """x clipped per date (within sector) to its q and 1 - q quantiles."""

    def __init__(self, x: Any, q: float = 0.01, by: Group | None = None) -> None:
        if not 0.0 <= q < 0.5:
            raise ValueError(f"Winsorize: q must be within 0..0.5, got {q!r}")
        super().__init__(x, by, extra=(float(q),))

    kernel = staticmethod(ops.cs_winsorize)


class Market(_Unary):
    """The equal-weight mean of x over the members present on each date."""

    kind = "market"

    def compute(self, args: Sequence[np.ndarray], ctx: Context) -> np.ndarray:
        x = _members(args[0], ctx)
        return np.broadcast_to(bn.nanmean(x, axis=0), x.shape)


class Custom(Expr):
    """`custom(fn, *inputs, lookback=n)` (module docstring)."""

    kind = "custom"

    def __init__(self, fn: Callable[..., np.ndarray], *inputs: Any, lookback: int) -> None:
        if not callable(fn):
            raise TypeError(f"custom: {fn!r} is not callable")
        self.window = _window(lookback, "custom lookback", 0)
        self.fn = fn
        name = getattr(fn, "__qualname__", repr(fn))
        super().__init__(*inputs, params=(f"{getattr(fn, '__module__', '?')}.{name}",
                                          self.window))

    def compute(self, args: Sequence[np.ndarray], ctx: Context) -> np.ndarray:
        # read-only views: the inputs are other nodes' values and the panel's fields
        out = np.asarray(self.fn(*map(_read_only, args)), dtype=np.float64)
        expected = np.broadcast_shapes(*(np.shape(a) for a in args))
        if out.shape != expected:
            raise ValueError(f"custom {self.params[0]}: returned shape {out.shape}, expected "
                             f"{expected}")
        return out

    def __repr__(self) -> str:
        return f"custom({self.params[0]}, {', '.join(map(repr, self.inputs))}, " \
               f"lookback={self.window})"


def _read_only(x: np.ndarray) -> np.ndarray:
    view = np.asarray(x).view()
    view.flags.writeable = False
    return view


def custom(fn: Callable[..., np.ndarray], *inputs: Any, lookback: int) -> Expr:
    """The escape hatch (Python only): `fn(*arrays)` as an expression (module docstring)."""
    return Custom(fn, *inputs, lookback=lookback)
