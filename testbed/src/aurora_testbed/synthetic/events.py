"""Missing bars, halts, splits and dividends of the synthetic market, and the raw close path.

Rates are per symbol and session, so the expected counts scale with symbol-years:

* a missing bar (one session without a bar): MISSING_BAR_RATE, about 3 per 100 symbol-years;
* a halt (1 to HALT_MAX_SESSIONS consecutive sessions without bars): HALT_RATE, about 1.5
  per 100 symbol-years.

The price keeps evolving through an absent session; only the bar is not published.
Mega-caps (ALWAYS_TRADED) never miss a bar: real ones are not halted, and they serve as the
gap-free reference series of conformance checks (every 2022-2023 session for AAPL, MSFT, JPM,
XOM and JNJ).

Cash dividends: payers go ex every DIVIDEND_INTERVAL sessions (phase per name), skipping an
ex session that has no bar or follows a session without one. The price drops at the open by
the quarterly yield q: close = previous close * (1 - q) * exp(r); the cash per share listed is
round(q * previous raw close, 2), at least $0.01, so Alpaca's dividend factor 1 - cash /
previous close equals 1 - q up to cent rounding and adjusted returns stay continuous.

Splits are path dependent, decided session by session on the RAW close:

* forward split: when the raw close exceeds the name's split threshold, a split of the
  name's ratio (2-, 3- or 4-for-1) goes ex SPLIT_NOTICE sessions later;
* reverse split: when the raw close falls below REVERSE_SPLIT_BELOW, a 1-for-5 (1-for-10
  below $1.50) reverse split goes ex SPLIT_NOTICE sessions later;
* no new split is triggered until SPLIT_COOLDOWN sessions after an ex_date; an ex_date that
  falls on a session without a bar or on a dividend ex session moves to the next session.

On a split ex session the raw close is previous close * old_rate / new_rate * exp(r).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MISSING_BAR_RATE = 3.0 / (100 * 252)
HALT_RATE = 1.5 / (100 * 252)
HALT_MAX_SESSIONS = 3
ALWAYS_TRADED = frozenset({"AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "BRK.B", "JPM",
                           "XOM", "JNJ"})
SPLIT_NOTICE = 15
SPLIT_COOLDOWN = 250
REVERSE_SPLIT_BELOW = 3.0
DIVIDEND_INTERVAL = 63


def absence_masks(uniforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(halted, missing) boolean masks (T, k) from (T, 2, k) uniforms (row t = session t).

    A halt starting at t covers t .. t+length-1; a missing bar inside a halt counts as halt.
    """
    u, u_len = uniforms[:, 0, :], uniforms[:, 1, :]
    halted = np.zeros(u.shape, dtype=bool)
    starts_t, starts_col = np.nonzero(u > 1.0 - HALT_RATE)
    lengths = 1 + (u_len[starts_t, starts_col] * HALT_MAX_SESSIONS).astype(np.int64)
    for t, col, length in zip(starts_t, starts_col, lengths, strict=True):
        halted[t : t + length, col] = True
    missing = (u < MISSING_BAR_RATE) & ~halted
    return halted, missing


def dividend_days(absent: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """(T, k) mask of dividend ex sessions; phase -1 marks a name that pays none."""
    t = np.arange(absent.shape[0])[:, None]
    days = (t % DIVIDEND_INTERVAL == phase[None, :]) & (phase[None, :] >= 0) & ~absent
    days[0] = False
    days[1:] &= ~absent[:-1]
    return days


@dataclass(frozen=True)
class Splits:
    """Split events as parallel arrays (session index from ORIGIN, column, rates)."""

    session: np.ndarray
    column: np.ndarray
    old_rate: np.ndarray
    new_rate: np.ndarray


def plant_splits(
    log_unsplit: np.ndarray,
    blocked: np.ndarray,
    threshold: np.ndarray,
    ratio: np.ndarray,
) -> tuple[np.ndarray, Splits]:
    """Return (log raw close (T, k), splits) from the log close before any split.

    blocked marks sessions a split may not go ex on (moved to the next session).
    """
    n_sessions, k = log_unsplit.shape
    log_high, log_low = np.log(threshold), np.log(REVERSE_SPLIT_BELOW)
    shift = np.zeros(k)  # cumulative log(new_rate / old_rate) in force
    armed = np.ones(k, dtype=bool)
    due: dict[int, np.ndarray] = {}
    rearm: dict[int, np.ndarray] = {}
    old_rate, new_rate = np.ones(k), np.ones(k)
    found: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    for t in range(n_sessions):
        if t in due:
            cols = due.pop(t)
            late = cols[blocked[t, cols]]
            if late.size:
                due[t + 1] = np.union1d(due.get(t + 1, late), late)
            cols = cols[~blocked[t, cols]]
            if cols.size:
                shift[cols] += np.log(new_rate[cols] / old_rate[cols])
                found.append((t, cols, old_rate[cols].copy(), new_rate[cols].copy()))
                rearm[t + SPLIT_COOLDOWN] = cols
        if t in rearm:
            armed[rearm.pop(t)] = True
        raw = log_unsplit[t] - shift
        trigger = armed & ((raw > log_high) | (raw < log_low))
        if trigger.any():
            cols = np.nonzero(trigger)[0]
            up = raw[cols] > log_high[cols]
            price = np.exp(raw[cols])
            old_rate[cols] = np.where(up, 1.0, np.where(price < 1.5, 10.0, 5.0))
            new_rate[cols] = np.where(up, ratio[cols], 1.0)
            armed[cols] = False
            due[t + SPLIT_NOTICE] = cols
    jumps = np.zeros_like(log_unsplit)
    for t, cols, old, new in found:
        jumps[t, cols] = np.log(new / old)
    log_raw = log_unsplit - np.cumsum(jumps, axis=0)
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return log_raw, Splits(empty, empty, np.zeros(0), np.zeros(0))
    return log_raw, Splits(
        session=np.concatenate([np.full(c.size, t, dtype=np.int64) for t, c, _, _ in found]),
        column=np.concatenate([c for _, c, _, _ in found]),
        old_rate=np.concatenate([o for _, _, o, _ in found]),
        new_rate=np.concatenate([n for _, _, _, n in found]),
    )
