"""Write daily bars into Qlib's binary data layout (a benchmark helper, not part of Aurora).

    .venv/bin/python benchmarks/qlib_layout.py [--prices FILE.parquet]   # self-test

Qlib (pyqlib, the `bench` extra) reads a "provider" directory of plain files:

    calendars/day.txt            one session a line, YYYY-MM-DD, ascending: the calendar
    instruments/all.txt          symbol <TAB> first date <TAB> last date, one symbol a line
    features/<sym>/<field>.day.bin
                                 little-endian float32: the first value is the index into
                                 the calendar of the symbol's first date (stored as a
                                 float), then one value per session up to its last date,
                                 NaN for a session inside that span without a bar

<sym> is the symbol lower-cased, with Qlib's prefix `_qlib_` before the names Windows
reserves (CON, PRN, AUX, NUL, COM0-9, LPT0-9), as `qlib.utils.code_to_fname` does; fields
are lower-case (`$close` reads close.day.bin). `write_qlib_layout` writes that from a long
polars frame of daily bars: date, symbol, open, high, low, close, volume, an optional vwap,
and a `factor` column (Qlib's adjustment factor: 1.0 when absent, since the bars handed in
are already split and dividend adjusted). The calendar is the union of the frame's dates.
Values are stored as float32, Qlib's only storage type: reading back gives the frame's
values rounded to float32 (about 7 significant digits; volumes above 2**24 lose their
last units).

This writer needs only numpy and polars. The self-test (`check_with_qlib`, run by this file's
__main__) reads the layout back with Qlib's own reader (`qlib.data.D.features`) and checks
every value against the frame cast to float32, and that sessions without a bar inside a
symbol's span read as NaN.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

REQUIRED = ("open", "high", "low", "close", "volume")
OPTIONAL = ("vwap", "factor")
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)),
             *(f"LPT{i}" for i in range(10))}


@dataclass(frozen=True)
class Layout:
    """What `write_qlib_layout` wrote."""

    root: Path
    fields: tuple[str, ...]
    symbols: int
    sessions: int
    first: dt.date
    last: dt.date
    bars: int
    files: int


def symbol_dir(symbol: str) -> str:
    """The features/ folder name Qlib looks up for a symbol (`code_to_fname`, lower-cased)."""
    name = f"_qlib_{symbol}" if symbol.upper() in _RESERVED else symbol
    return name.lower()


def write_qlib_layout(bars: pl.DataFrame, root: Path | str) -> Layout:
    """Write `bars` (date, symbol, open, high, low, close, volume[, vwap][, factor]) as a Qlib
    provider directory under `root` (created; existing files of the same names replaced).

    Refuses duplicate (symbol, date) rows, symbols that are empty or hold a path separator,
    and two symbols that map to the same folder (Qlib lower-cases them). Null values are
    written as NaN. Returns a summary of what was written.
    """
    missing = [c for c in ("date", "symbol", *REQUIRED) if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack column(s) {', '.join(missing)}")
    fields = [*REQUIRED, *(c for c in OPTIONAL if c in bars.columns)]
    frame = bars.select(
        pl.col("date").cast(pl.Date), pl.col("symbol").cast(pl.String),
        *[pl.col(c).cast(pl.Float64) for c in fields],
    )
    if "factor" not in fields:
        frame = frame.with_columns(pl.lit(1.0).alias("factor"))
        fields.append("factor")
    if frame["date"].null_count() or frame["symbol"].null_count():
        raise ValueError("bars have null dates or symbols")
    dupes = frame.select("symbol", "date").is_duplicated()
    if dupes.any():
        first = frame.filter(dupes).row(0, named=True)
        raise ValueError(f"duplicate bars for {first['symbol']} on {first['date']}")
    symbols = frame["symbol"].unique().sort().to_list()
    folders: dict[str, str] = {}
    for symbol in symbols:
        if not symbol or "/" in symbol or "\\" in symbol or symbol in (".", ".."):
            raise ValueError(f"symbol {symbol!r} cannot name a folder")
        other = folders.setdefault(symbol_dir(symbol), symbol)
        if other != symbol:
            raise ValueError(f"symbols {other!r} and {symbol!r} share Qlib's folder "
                             f"{symbol_dir(symbol)!r}")

    root = Path(root)
    for sub in ("calendars", "instruments", "features"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    calendar = frame["date"].unique().sort()
    (root / "calendars" / "day.txt").write_text(
        "".join(f"{d:%Y-%m-%d}\n" for d in calendar.to_list()))

    # calendar position of every bar; rows sorted by (symbol, date), one run per symbol
    position = {d: i for i, d in enumerate(calendar.to_list())}
    frame = frame.sort("symbol", "date").with_columns(
        pl.col("date").replace_strict(position, return_dtype=pl.Int64).alias("_pos"))
    runs = frame.group_by("symbol", maintain_order=True).agg(
        pl.len().alias("n"), pl.col("date").first().alias("first"),
        pl.col("date").last().alias("last"))
    (root / "instruments" / "all.txt").write_text("".join(
        f"{s}\t{a:%Y-%m-%d}\t{b:%Y-%m-%d}\n"
        for s, a, b in zip(runs["symbol"], runs["first"], runs["last"], strict=True)))

    pos = frame["_pos"].to_numpy()
    values = {f: frame[f].to_numpy().astype("<f4") for f in fields}  # nulls become NaN
    ends = np.cumsum(runs["n"].to_numpy())
    starts = ends - runs["n"].to_numpy()
    files = 0
    for symbol, lo, hi in zip(runs["symbol"].to_list(), starts, ends, strict=True):
        where = pos[lo:hi]
        first = int(where[0])
        folder = root / "features" / symbol_dir(symbol)
        folder.mkdir(exist_ok=True)
        out = np.full(int(where[-1]) - first + 2, np.nan, dtype="<f4")
        out[0] = first  # exact in float32 below 2**24 sessions
        for field in fields:
            out[1:] = np.nan
            out[where - first + 1] = values[field][lo:hi]
            out.tofile(folder / f"{field}.day.bin")
            files += 1
    return Layout(root=root, fields=tuple(fields), symbols=len(symbols),
                  sessions=len(calendar), first=calendar[0], last=calendar[-1],
                  bars=frame.height, files=files)


def check_with_qlib(bars: pl.DataFrame, layout: Layout) -> int:
    """Read `layout` back with Qlib's reader and compare with `bars` (cast to float32).

    Checks, for every symbol of the instruments file and every written field: the rows Qlib
    returns are exactly the calendar sessions of the symbol's span, each bar's value equals
    the frame's value as float32 (NaN where the frame has a null), and sessions without a
    bar read NaN. Raises AssertionError on the first difference; returns the values checked.
    """
    import qlib
    from qlib.data import D

    qlib.init(provider_uri=str(layout.root), region="us", expression_cache=None,
              dataset_cache=None, kernels=1)
    fields = list(layout.fields)
    got = D.features(D.instruments("all"), [f"${f}" for f in fields],
                     start_time=str(layout.first), end_time=str(layout.last))
    got.columns = fields
    got = pl.from_pandas(got.reset_index()).select(
        pl.col("instrument").alias("symbol"), pl.col("datetime").cast(pl.Date).alias("date"),
        *[pl.col(f).cast(pl.Float32) for f in fields])
    want = bars.select("symbol", pl.col("date").cast(pl.Date),
                       *[pl.col(f).cast(pl.Float32) for f in fields if f in bars.columns])
    if "factor" not in bars.columns:
        want = want.with_columns(pl.lit(1.0, pl.Float32).alias("factor"))
    calendar = [dt.date.fromisoformat(x) for x in
                (layout.root / "calendars" / "day.txt").read_text().split()]
    spans = want.group_by("symbol").agg(pl.col("date").min().alias("a"),
                                        pl.col("date").max().alias("b"))
    expected = (spans.join(pl.DataFrame({"date": calendar}), how="cross")
                .filter(pl.col("date").is_between(pl.col("a"), pl.col("b")))
                .select("symbol", "date"))
    got_keys = got.select("symbol", "date").sort("symbol", "date")
    assert got_keys.equals(expected.sort("symbol", "date")), "Qlib's rows != the spans"
    merged = got.join(want, on=["symbol", "date"], how="left", suffix="_want")
    checked = 0
    for f in fields:
        a = merged[f].to_numpy()
        b = merged[f"{f}_want"].fill_null(np.nan).to_numpy()
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        assert same.all(), (f"{f}: {int((~same).sum())} values differ, first at "
                            f"{merged.filter(~pl.Series(same)).row(0)}")
        checked += len(a)
    return checked


def _example() -> pl.DataFrame:
    """A small frame with gaps, a late listing, nulls, a vwap and a Windows-reserved name."""
    days = [dt.date(2024, 1, 2) + dt.timedelta(days=i) for i in range(40)]
    days = [d for d in days if d.weekday() < 5]
    rng = np.random.default_rng(3)
    rows = []
    for k, symbol in enumerate(["AAA", "BRK.B", "CON", "late"]):
        for i, d in enumerate(days):
            if (symbol == "AAA" and i in (5, 6)) or (symbol == "late" and i < 10):
                continue
            c = 100 + k + float(rng.normal())
            rows.append({"date": d, "symbol": symbol, "open": c * 0.99, "high": c * 1.01,
                         "low": c * 0.98, "close": c, "volume": float(rng.integers(1, 10**8)),
                         "vwap": None if (symbol == "BRK.B" and i == 3) else c * 1.001})
    return pl.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prices", help="also check this parquet of daily bars (date, symbol,"
                        " open, high, low, close, volume[, vwap])")
    args = parser.parse_args()
    frames = [("example", _example())]
    if args.prices:
        frames.append((args.prices, pl.read_parquet(args.prices)))
    for label, bars in frames:
        keep = [c for c in ("date", "symbol", *REQUIRED, *OPTIONAL) if c in bars.columns]
        bars = bars.select(keep)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            layout = write_qlib_layout(bars, tmp)
            wrote = time.perf_counter() - t
            checked = check_with_qlib(bars, layout)
        print(f"{label}: {layout.symbols} symbols x {layout.sessions} sessions, {layout.bars} "
              f"bars, {layout.files} files written in {wrote:.2f}s; {checked} values read back "
              "by qlib.data.D.features equal the frame's (float32)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
