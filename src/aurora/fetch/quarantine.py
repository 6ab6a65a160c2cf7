"""The fetch's quarantine: which symbols' bars this run keeps out of its version, and why.

A defect in one symbol's bars quarantines that symbol instead of failing the fetch: its
stored bars stay as they were (a new symbol has none), the rest of its batch and of the
universe is published, and the version's quarantine.json records it (`aurora.quarantine`).

Contract (`FetchQuarantine`, one per run):
- `refetch_in_full()`: the universe symbols the version read holds as quarantined, or
  released and waiting for a refetch. The plan reads their whole history: a quarantined
  symbol whose bars now validate leaves the quarantine by itself (fixed at the source, said
  in a warning), a released one is checked with its release's problems accepted.
- `resolve_duplicates(label, frame, warnings)`, on every batch's bars (fetched, or resumed
  from a checkpoint, which holds the bars as served, so a resumed run decides the same):
  where a (symbol, date) has an all-zero bar (open = high = low = close = volume = 0) and
  another bar, the zero bar is dropped (warning); identical copies are dropped (warning);
  a conflicting duplicate on a date a release accepted keeps the first bar served
  (warning); any other conflicting duplicate quarantines the symbol (problem `duplicates`
  with every conflicting date) and all its bars leave the batch. Thread-safe.
- `validate_isolating(..., inactive=...)`: validates the merged prices with
  `validate_prices` (ends of life from `ended()`, and the `inactive` symbols, those the
  trading API lists as delisted, ended at their last bar; `aurora.validation.inactive`,
  whose `apply_inactive` also makes an inactive symbol without any bar a warning) and
  `apply_quarantine`; the error findings of the per-symbol bar checks (`QUARANTINABLE`:
  every price check but `schema`, `missing_symbols` and `unexpected_symbols`) quarantine
  their universe symbols, whose rows are put back to their stored rows (`keep_out`), and
  the prices are validated again (at most `PASSES` times). It stops as soon as the
  quarantined share of the universe is beyond `max_share` (`over_limit()`): the caller
  then fails the fetch as before, publishing nothing. Other errors (schema, a universe
  symbol without any bar, ...) are left in the report for the caller to fail on.
- `record(refetched)`: the record to publish: this run's quarantined symbols (an entry
  quarantined before keeps its time and version, with this run's problems), the carried
  entries of symbols outside this universe unchanged (not re-checked), the releases, those
  of `refetched` symbols no longer waiting for a refetch.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import polars as pl

from aurora.config import ValidationConfig
from aurora.quarantine import Problem, QuarantineEntry, QuarantineRecord, utc_now
from aurora.schemas import find_duplicate_keys
from aurora.validation import ValidationReport, validate_prices
from aurora.validation.findings import Finding, format_dates
from aurora.validation.inactive import apply_inactive, ended_at_last_bar
from aurora.validation.prices import PRICE_CHECKS
from aurora.validation.quarantined import apply_quarantine

QUARANTINABLE = frozenset(PRICE_CHECKS) - {"schema", "missing_symbols", "unexpected_symbols"}
PASSES = 3
_KEY = ["symbol", "date"]
_ZERO = ["open", "high", "low", "close", "volume"]


def keep_out(prices: pl.DataFrame, stored: pl.DataFrame | None,
             symbols: Iterable[str]) -> pl.DataFrame:
    """`prices` with every row of `symbols` replaced by their rows in `stored` (none when
    `stored` lacks them), sorted by symbol and date."""
    out_symbols = list(symbols)
    if not out_symbols:
        return prices
    kept = prices.filter(~pl.col("symbol").is_in(out_symbols)) if prices.width else prices
    old = (stored.filter(pl.col("symbol").is_in(out_symbols))
           if stored is not None and stored.height else None)
    if old is None or old.height == 0:
        return kept
    if kept.width == 0:
        return old.sort(_KEY)
    both = pl.concat([kept, old], how="diagonal_relaxed").select(kept.columns)
    return both.sort(_KEY)


@dataclass
class FetchQuarantine:
    """One run's quarantine decisions (module docstring)."""

    carried: QuarantineRecord
    universe: Sequence[str]
    max_share: float
    now: str = field(default_factory=utc_now)
    problems: dict[str, list[Problem]] = field(default_factory=dict)
    from_batches: dict[str, Problem] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def refetch_in_full(self) -> set[str]:
        wanted = set(self.carried.quarantined) | self.carried.pending_refetch()
        return wanted & set(self.universe)

    def symbols(self) -> list[str]:
        """The symbols this run quarantined so far, sorted."""
        return sorted(self.problems)

    def ended(self) -> dict[str, dt.date]:
        """Symbols whose history ended -> their last date: released `stale_symbol`s (the
        inactive symbols of `validate_isolating` are ended at their last bar there)."""
        return dict(self.carried.ended())

    def share(self) -> float:
        members = set(self.universe)
        held = [s for s in self.problems if s in members]
        return len(held) / len(members) if members else 0.0

    def over_limit(self) -> bool:
        return self.share() > self.max_share

    # -- batches ------------------------------------------------------------------------
    def resolve_duplicates(self, label: str, frame: pl.DataFrame,
                           warnings: list[str]) -> pl.DataFrame:
        """A batch's bars with duplicated (symbol, date) keys resolved (module docstring)."""
        if frame.height == 0 or not frame.select(pl.struct(_KEY).is_duplicated().any()).item():
            return frame
        frame = self._drop_zero_twins(label, frame, warnings)
        duplicates = find_duplicate_keys(frame)
        if duplicates is None:
            return frame
        clashes = duplicates.conflicting
        if clashes.height < duplicates.groups.height:
            copies = duplicates.groups.height - clashes.height
            warnings.append(f"batch {label}: {copies} duplicated (symbol, date) key(s) with "
                            "identical copies; the copies removed")
        out_symbols, first_kept = [], []
        for symbol, days in (clashes.group_by("symbol", maintain_order=True)
                             .agg(pl.col("date").sort()).iter_rows()):
            dates = tuple(days)
            if self.carried.accepts(symbol, "duplicates", dates):
                first_kept.append(symbol)
                warnings.append(f"batch {label}: {symbol}: conflicting duplicate bars on "
                                f"{format_dates(dates)}: the first bar served is kept (a "
                                "release accepted these dates)")
                continue
            problem = Problem("duplicates", dates, (
                f"the server sent {len(dates)} (symbol, date) key(s) with conflicting bars "
                f"({format_dates(dates)}); none of them can be told right"))
            with self._lock:
                self.problems[symbol] = [problem]
                self.from_batches[symbol] = problem
            out_symbols.append(symbol)
        if out_symbols:
            frame = frame.filter(~pl.col("symbol").is_in(out_symbols))
        return frame.unique(_KEY, keep="first", maintain_order=True)

    @staticmethod
    def _drop_zero_twins(label: str, frame: pl.DataFrame, warnings: list[str]) -> pl.DataFrame:
        present = [c for c in _ZERO if c in frame.columns]
        zero = pl.all_horizontal([pl.col(c) == 0 for c in present]).fill_null(False)
        flagged = frame.with_columns(
            _dup=pl.struct(_KEY).is_duplicated(), _zero=zero,
        ).with_columns(_real=(~pl.col("_zero")).any().over(_KEY))
        drop = pl.col("_dup") & pl.col("_zero") & pl.col("_real")
        dropped = flagged.filter(drop)
        if dropped.height == 0:
            return frame
        for symbol, days in (dropped.group_by("symbol").agg(pl.col("date").unique().sort())
                             .sort("symbol").iter_rows()):
            warnings.append(f"batch {label}: {symbol}: a duplicate bar of all zeros on "
                            f"{format_dates(tuple(days))} was dropped; the other bar is kept")
        return flagged.filter(~drop).drop("_dup", "_zero", "_real")

    # -- validation ---------------------------------------------------------------------
    def take(self, report: ValidationReport) -> list[str]:
        """Quarantine the universe symbols with errors of the per-symbol checks; return the
        symbols new to the quarantine."""
        members = set(self.universe)
        new: dict[str, list[Problem]] = {}
        for f in report.errors:
            if f.symbol in members and f.check in QUARANTINABLE and f.symbol not in self.problems:
                new.setdefault(f.symbol, []).append(Problem(f.check, f.dates, f.message))
        self.problems.update(new)
        return sorted(new)

    def entries(self) -> dict[str, QuarantineEntry]:
        out = {}
        for symbol in self.symbols():
            old = self.carried.quarantined.get(symbol)
            out[symbol] = QuarantineEntry(
                symbol, tuple(self.problems[symbol]),
                old.quarantined_at if old is not None else self.now,
                old.version if old is not None else None)
        return out

    def record(self, refetched: Iterable[str] = ()) -> QuarantineRecord:
        members = set(self.universe)
        quarantined = {s: e for s, e in self.carried.quarantined.items() if s not in members}
        quarantined.update(self.entries())
        return QuarantineRecord(quarantined, self.carried.released).refetched(refetched)

    def fixed(self) -> list[str]:
        """Universe symbols quarantined before whose bars now validate."""
        members = set(self.universe)
        return sorted(s for s in self.carried.quarantined
                      if s in members and s not in self.problems)

    def batch_findings(self) -> list[Finding]:
        """The batch problems as error findings (for the report of a fetch that fails)."""
        return [Finding("duplicates", "error", p.message, symbol, p.dates, len(p.dates) or 1)
                for symbol, p in sorted(self.from_batches.items())]

    def validate_isolating(self, prices: pl.DataFrame, *, stored: pl.DataFrame | None,
                           actions: pl.DataFrame, config: ValidationConfig,
                           inactive: Sequence[str] = ()
                           ) -> tuple[pl.DataFrame, ValidationReport]:
        """(prices, final report) after quarantining per-symbol defects (module docstring);
        `inactive`: the symbols the trading API lists as inactive."""
        prices = keep_out(prices, stored, self.symbols())
        report: ValidationReport | None = None
        for attempt in range(PASSES + 1):
            report = validate_prices(prices, universe=list(self.universe),
                                     corporate_actions=actions, config=config,
                                     ended={**self.ended(),
                                            **ended_at_last_bar(prices, inactive)})
            report = apply_inactive(report, inactive)
            # the symbols read in full now are checked, not excused as waiting for a refetch
            report = apply_quarantine(report, self.record(self.refetch_in_full()),
                                      config.severities)
            new = self.take(report) if attempt < PASSES else []
            if not new or self.over_limit():
                break
            prices = keep_out(prices, stored, new)
        assert report is not None
        return prices, report
