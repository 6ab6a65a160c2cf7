"""Compiled (numba) loops for the build's hot spots.

These are the parts of the build that numpy can only express as fancy indexing or as several
passes over fresh temporaries: placing bars on the session grid, masking, copying each
symbol's emitted cells into the long output columns (and date-major blocks back into
symbol-major runs), per-date ranks and group moments, rolling co-moments, and Arrow
validity bitmaps. Each kernel is one pass over its input, releases the GIL (`nogil`) and is
cached on disk after its first compilation (`cache=True`: the first build after an install
compiles them once, in about a second per kernel; later processes load them).

Contracts are stated per kernel; none allocates its output, and none reads outside the
index ranges it is given (numba does not bounds-check, so callers pass consistent shapes).
The first call of a kernel in a process loads it from the cache (about 0.6 s for the first,
numba's own start-up; `benchmarks/bench_features.py` reports it as warm-up).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def emit_rows(x: np.ndarray, first: np.ndarray, offset: np.ndarray, out: np.ndarray) -> None:
    """Copy each row's emitted run: out[offset[r] + k] = x[r, first[r] + k] for
    k < offset[r + 1] - offset[r] (x: rows x sessions; offset: rows + 1 output bounds),
    non-finite values as NaN."""
    for r in range(x.shape[0]):
        lo = offset[r]
        f = first[r] - lo
        for k in range(lo, offset[r + 1]):
            v = x[r, f + k]
            out[k] = v if np.isfinite(v) else np.nan


@njit(cache=True, nogil=True)
def emit_columns(v: np.ndarray, d0: int, first: np.ndarray, offset: np.ndarray,
                 out: np.ndarray) -> None:
    """Scatter a date-major block into symbol-major output runs.

    v: (sessions d0 .. d0 + len(v) - 1) x symbols. Symbol i's run in `out` covers sessions
    first[i] .. first[i] + offset[i + 1] - offset[i] - 1, stored from offset[i]; only the
    sessions of the run that fall inside the block are written.
    """
    n_days, n_symbols = v.shape
    tile = 8  # symbols per pass: one cache line of each date row is read once
    for i0 in range(0, n_symbols, tile):
        for i in range(i0, min(i0 + tile, n_symbols)):
            lo = max(d0, first[i])
            hi = min(d0 + n_days, first[i] + offset[i + 1] - offset[i])
            base = offset[i] - first[i]
            for t in range(lo, hi):
                out[base + t] = v[t - d0, i]


_TOP = np.uint64(1 << 63)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(cache=True, nogil=True)
def rank_keys(x: np.ndarray, codes: np.ndarray, group_bits: int, bits: int,
              keys: np.ndarray) -> None:
    """Sort keys of each row of x (dates x symbols, C order) that order a row by (group,
    value, column).

    A key is, from the top: the column's group code (`group_bits` bits; codes: int64 per
    column, 0 .. 2**group_bits - 1), the value's float64 bit pattern made monotone (sign
    flipped for positives, all bits flipped for negatives; NaN the largest) and cut to the
    bits left, and in the low `bits` bits the column index. Sorting a row's keys therefore
    groups its columns, then orders them by value, NaN last. Values whose keys agree in
    everything but the column index (a relative difference below ~2**(group_bits + bits -
    52)) form a run in column order; `ranks_from_keys` orders such runs exactly. The top
    bit is then flipped, so the keys viewed as int64 sort in the same order (callers sort
    that view: numpy's int64 sort is faster than its uint64 one).
    """
    mask = (np.uint64(1) << np.uint64(bits)) - np.uint64(1)
    keep = ~mask
    low = np.uint64(group_bits)
    top = np.uint64(64 - group_bits) if group_bits > 0 else np.uint64(0)
    for r in range(x.shape[0]):
        for j in range(x.shape[1]):
            v = x[r, j]
            if np.isnan(v):
                u = _ALL
            else:
                u = np.float64(v).view(np.uint64)
                u = ~u if u >> np.uint64(63) else u | _TOP
            if group_bits > 0:
                u = (u >> low) | (np.uint64(codes[j]) << top)
            # top bit flipped: the keys sort the same as int64, which numpy sorts faster
            keys[r, j] = ((u & keep) | np.uint64(j)) ^ _TOP


@njit(cache=True, nogil=True)
def ranks_from_keys(x: np.ndarray, keys: np.ndarray, group_bits: int, bits: int,
                    out: np.ndarray) -> None:
    """Percentile ranks within each group of each row, from the row-sorted keys of
    `rank_keys` (same group_bits and bits).

    out[r, j] = average 1-based rank of x[r, j] among the non-missing values of its group on
    row r, divided by their count (ties share the mean of their ranks, as pandas
    `rank(pct=True)`); NaN where x is NaN. Exact: inside a run of keys equal but for the
    column index (values within ~2**(group_bits + bits - 52) of each other, usually 2 or 3)
    the order is fixed by comparing the values themselves.
    """
    mask = (np.uint64(1) << np.uint64(bits)) - np.uint64(1)
    low = np.uint64(bits)
    top = np.uint64(64 - group_bits) if group_bits > 0 else np.uint64(63)
    n_cols = x.shape[1]
    order = np.empty(n_cols, dtype=np.int64)
    ordered = np.empty(n_cols)  # the row's values in key order
    for r in range(x.shape[0]):
        row = x[r]
        key = keys[r]
        for k in range(n_cols):
            c = np.int64(key[k] & mask)
            order[k] = c
            ordered[k] = row[c]
        k = 1
        while k < n_cols:  # runs of equal truncated keys: order them by value
            if key[k] >> low != key[k - 1] >> low or np.isnan(ordered[k]):
                k += 1
                continue
            j = k - 1
            e = k + 1
            while e < n_cols and key[e] >> low == key[j] >> low:
                e += 1
            for m in range(j + 1, e):  # insertion sort of the (short) run
                c = order[m]
                v = ordered[m]
                i = m - 1
                while i >= j and ordered[i] > v:
                    order[i + 1] = order[i]
                    ordered[i + 1] = ordered[i]
                    i -= 1
                order[i + 1] = c
                ordered[i + 1] = v
            k = e
        g0 = 0
        while g0 < n_cols:  # each group: its values ascending, then its NaNs
            g1 = n_cols
            if group_bits > 0:
                group = key[g0] >> top
                g1 = g0 + 1
                while g1 < n_cols and key[g1] >> top == group:
                    g1 += 1
            n = 0
            while g0 + n < g1 and not np.isnan(ordered[g0 + n]):
                n += 1
            for m in range(g0 + n, g1):
                out[r, order[m]] = np.nan
            j = g0
            while j < g0 + n:
                v = ordered[j]
                k = j + 1
                while k < g0 + n and ordered[k] == v:
                    k += 1
                rank = ((j + k - 1 - 2 * g0) * 0.5 + 1.0) / n
                for m in range(j, k):
                    out[r, order[m]] = rank
                j = k
            g0 = g1


@njit(cache=True, nogil=True)
def group_moments(x: np.ndarray, codes: np.ndarray, n_groups: int, standardize: bool,
                  out: np.ndarray) -> None:
    """Per row of x (dates x symbols, C order) and group of columns (codes: int64 per
    column, -1 for none): out = x - mean of the group's non-missing values on that row, and
    when `standardize` divided by their sample std (ddof=1; NaN when it is 0 or undefined).
    NaN where x is NaN or the column has no group. Two passes per row (mean, then squares
    about it), so no cancellation."""
    total = np.zeros(n_groups)
    count = np.zeros(n_groups)
    squares = np.zeros(n_groups)
    for r in range(x.shape[0]):
        total[:] = 0.0
        count[:] = 0.0
        squares[:] = 0.0
        row = x[r]
        for j in range(x.shape[1]):
            g = codes[j]
            if g >= 0 and not np.isnan(row[j]):
                total[g] += row[j]
                count[g] += 1.0
        for g in range(n_groups):
            total[g] = total[g] / count[g] if count[g] > 0 else np.nan
        if standardize:
            for j in range(x.shape[1]):
                g = codes[j]
                if g >= 0 and not np.isnan(row[j]):
                    d = row[j] - total[g]
                    squares[g] += d * d
            for g in range(n_groups):
                sd = np.sqrt(squares[g] / (count[g] - 1.0)) if count[g] > 1 else 0.0
                squares[g] = 1.0 / sd if sd > 0 else np.nan
        for j in range(x.shape[1]):
            g = codes[j]
            if g < 0:
                out[r, j] = np.nan
            elif standardize:
                out[r, j] = (row[j] - total[g]) * squares[g]
            else:
                out[r, j] = row[j] - total[g]


@njit(cache=True, nogil=True)
def validity_bitmap(x: np.ndarray, bitmap: np.ndarray) -> int:
    """Arrow validity bits of x (bit i of bitmap, LSB first, set when x[i] is not NaN) and
    the number of NaNs. bitmap: uint8, at least ceil(len(x) / 8) bytes."""
    n = x.shape[0]
    missing = 0
    full = n // 8
    for byte in range(full):
        bits = 0
        for k in range(8):
            if np.isnan(x[byte * 8 + k]):
                missing += 1
            else:
                bits |= 1 << k
        bitmap[byte] = bits
    if full * 8 < n:
        bits = 0
        for k in range(n - full * 8):
            if np.isnan(x[full * 8 + k]):
                missing += 1
            else:
                bits |= 1 << k
        bitmap[full] = bits
    return missing


@njit(cache=True, nogil=True)
def long_index(offset: np.ndarray, first: np.ndarray, row: np.ndarray,
               column: np.ndarray) -> None:
    """The (row, column) of every output cell: for k in offset[r] .. offset[r + 1] - 1,
    row[k] = r and column[k] = first[r] + k - offset[r]."""
    for r in range(offset.shape[0] - 1):
        for k in range(offset[r], offset[r + 1]):
            row[k] = r
            column[k] = first[r] + k - offset[r]


COV, CORR, BETA = 0, 1, 2


@njit(cache=True, nogil=True)
def rolling_comoment(x: np.ndarray, y: np.ndarray, window: int, min_count: int, kind: int,
                     out: np.ndarray) -> None:
    """Rolling co-moments of each row pair over the last `window` columns, using the bars
    where both x and y are present (NaN where fewer than max(min_count, 2) are).

    kind COV: sample covariance (ddof=1); CORR: Pearson correlation; BETA: cov(x, y) /
    var(y), the OLS slope of x on y. A window where x (CORR) or y (CORR, BETA) has no
    variance gives NaN. One pass per row over running sums of the values minus the row's
    first present pair (the shift keeps the sums small, so sum(xy) - sum(x)sum(y)/n does
    not cancel catastrophically for series far from 0); causal: out[:, t] reads columns
    t - window + 1 .. t only.
    """
    rows, cols = x.shape
    for r in range(rows):
        kx = ky = np.nan
        n = 0
        sx = sy = sxx = syy = sxy = 0.0
        for t in range(cols):
            a = x[r, t]
            b = y[r, t]
            if not (np.isnan(a) or np.isnan(b)):
                if np.isnan(kx):
                    kx, ky = a, b
                a -= kx
                b -= ky
                n += 1
                sx += a
                sy += b
                sxx += a * a
                syy += b * b
                sxy += a * b
            if t >= window:
                a = x[r, t - window]
                b = y[r, t - window]
                if not (np.isnan(a) or np.isnan(b)):
                    a -= kx
                    b -= ky
                    n -= 1
                    sx -= a
                    sy -= b
                    sxx -= a * a
                    syy -= b * b
                    sxy -= a * b
            if n < min_count or n < 2:
                out[r, t] = np.nan
                continue
            cxy = sxy - sx * sy / n
            if kind == COV:
                out[r, t] = cxy / (n - 1)
                continue
            myy = syy - sy * sy / n
            if kind == CORR:
                mxx = sxx - sx * sx / n
                out[r, t] = cxy / np.sqrt(mxx * myy) if mxx > 0 and myy > 0 else np.nan
            else:
                out[r, t] = cxy / myy if myy > 0 else np.nan


@njit(cache=True, nogil=True)
def grid_keys(row: np.ndarray, day: np.ndarray, column_of_day: np.ndarray, first_day: int,
              n_cols: int, key: np.ndarray, seen: np.ndarray) -> int:
    """The flat grid cell of every bar: key[i] = row[i] * n_cols + column of day[i], where
    column_of_day[d - first_day] is the session column of day number d (-1: no session).
    seen (bool, rows * n_cols, all False on entry) marks the cells that have a bar. Returns
    the index of the first bar on a non-session day or in an already seen cell (a duplicate
    key), or -1 when every bar is fine."""
    n_days = column_of_day.shape[0]
    for i in range(row.shape[0]):
        d = day[i] - first_day
        c = column_of_day[d] if 0 <= d < n_days else -1
        if c < 0:
            return i
        k = row[i] * n_cols + c
        if seen[k]:
            return i
        seen[k] = True
        key[i] = k
    return -1


@njit(cache=True, nogil=True)
def scatter(key: np.ndarray, values: np.ndarray, out: np.ndarray) -> None:
    """out (flat) = NaN everywhere, then out[key[i]] = values[i]."""
    out[:] = np.nan
    for i in range(key.shape[0]):
        out[key[i]] = values[i]


@njit(cache=True, nogil=True)
def mask_cells(value: np.ndarray, first: np.ndarray, last: np.ndarray,
               date_major: bool) -> None:
    """Set to NaN, in place, every cell outside its symbol's valid columns and every
    non-finite cell. Symbol i's valid columns are first[i] .. last[i] (its span shortened by
    the look-back). value: symbols x sessions, or sessions x symbols when date_major."""
    rows, cols = value.shape
    if date_major:
        for t in range(rows):
            for i in range(cols):
                if t < first[i] or t > last[i] or not np.isfinite(value[t, i]):
                    value[t, i] = np.nan
        return
    for i in range(rows):
        lo = min(max(first[i], 0), cols)
        hi = max(min(last[i] + 1, cols), lo)
        for t in range(lo):
            value[i, t] = np.nan
        for t in range(lo, hi):
            if not np.isfinite(value[i, t]):
                value[i, t] = np.nan
        for t in range(hi, cols):
            value[i, t] = np.nan
