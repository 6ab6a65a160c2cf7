"""Benchmark: the intraday family's cost, on the S&P 500 sample's daily bars with a year of
minutes, in one run.

    .venv/bin/python benchmarks/bench_intraday_features.py [--sample DIR] [--months 12]

Setup (not timed), in a temporary data directory: the sample's raw daily bars imported
(`aurora import bars`); for the last `--months` of them, minute bars consistent with each
daily bar (the test bed's `minute_bars`, as the emulator serves them) stored in
`data/intraday/1Min`, one part per day, leaving the last session out.

Timed:
- daily fields, pandas idiom (the baseline): a `groupby(["symbol", "date"]).apply` of a
  function computing the five fields per day, on the first month of minutes (the rate is
  given per symbol-day, the whole year would take proportionally longer);
- daily fields, Aurora: `daily_fields` alone on the same first month as the baseline; every
  stored day's bars read, verified and summed up (what a build pays for a store written
  without the summaries); `load_daily_fields`, which reads the summaries stored beside the
  bars (what a fetch or the stream writes);
- `build_features` full without the family (the 45), full with it (50), and the
  incremental build after one more session of daily bars and minutes.

Prints seconds, symbol-days per second and the ratio against the pandas idiom; peak RSS of
the process at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from sp500_sample import DEFAULT_SAMPLE  # noqa: E402


def pandas_fields(minutes: pd.DataFrame) -> pd.DataFrame:
    """The five fields the way a pandas user writes them: one function per (symbol, day)."""

    def one(g: pd.DataFrame) -> pd.Series:
        day = g.name[1]
        open_ = pd.Timestamp(dt.datetime.combine(day, dt.time(9, 30)), tz="America/New_York")
        close = open_ + pd.Timedelta(minutes=390)
        ends = g["timestamp"] + pd.Timedelta(minutes=1)
        g = g[(g["timestamp"] >= open_) & (ends <= close)].sort_values("timestamp")
        ends = g["timestamp"] + pd.Timedelta(minutes=1)
        bucket = ((g["timestamp"] - open_).dt.total_seconds() // 300).astype(int)
        prices = np.concatenate([[g["open"].iloc[0]],
                                 g.groupby(bucket)["close"].last().to_numpy()])
        r = np.diff(np.log(prices))
        first = g.loc[ends <= open_ + pd.Timedelta(minutes=30), "close"]
        before = g.loc[ends <= close - pd.Timedelta(minutes=30), "close"]
        last = g["close"].iloc[-1]
        volume = g["volume"].sum()
        late = g.loc[g["timestamp"] >= close - pd.Timedelta(minutes=30), "volume"].sum()
        return pd.Series({
            "rv": float((r ** 2).sum()),
            "first": math.log(first.iloc[-1] / g["open"].iloc[0]) if len(first) else np.nan,
            "last": math.log(last / before.iloc[-1]) if len(before) else np.nan,
            "gap": math.log(last / ((g["vwap"] * g["volume"]).sum() / volume)),
            "share": late / volume})

    return minutes.groupby(["symbol", "date"]).apply(one, include_groups=False)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE)
    parser.add_argument("--months", type=int, default=12)
    args = parser.parse_args()

    from aurora.config import AuroraConfig, BuildConfig, ValidationConfig
    from aurora.features.builder import build_features
    from aurora.importbars import import_bars
    from aurora.intraday.daily import daily_fields, load_daily_fields, summarizer
    from aurora.intraday.store import intraday_store, read_intraday, write_days
    from aurora.schemas import INTRADAY_SCHEMA
    from aurora.store import Store
    from aurora_testbed.synthetic.minutes import minute_bars

    daily = pl.read_parquet(args.sample / "prices.parquet").drop("adj_close")
    days = sorted(daily["date"].unique().to_list())
    last = days[-1]
    minute_days = [d for d in days if d > last - dt.timedelta(days=round(args.months * 30.4))]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        bars = Path(tmp) / "bars.parquet"
        daily.filter(pl.col("date") < last).write_parquet(bars)
        store = Store(root)
        # the sample's real defects (a +52% day of AMD) are findings here, not errors
        lenient = ValidationConfig(severities={"large_move": "warning"})
        import_bars(store, bars, config=AuroraConfig(data_dir=root, validation=lenient),
                    today=last)
        istore = intraday_store(root, "1Min")
        summarize = summarizer("1Min")  # stored beside each day's bars, as a fetch does
        assert summarize is not None
        t0 = time.perf_counter()
        for i in range(0, len(minute_days), 21):
            chunk = [d for d in minute_days[i:i + 21] if d < last]
            minutes = minute_bars(daily.filter(pl.col("date").is_in(chunk)), 0).with_columns(
                date=pl.col("timestamp").dt.convert_time_zone("America/New_York").dt.date())
            with istore.transaction("bench", base=istore.current_version()) as txn:
                write_days(txn, minutes.select(list(INTRADAY_SCHEMA)), summarize)
        print(f"setup: {len(minute_days) - 1} days of minutes of {daily['symbol'].n_unique()}"
              f" symbols stored in {time.perf_counter() - t0:.0f} s")

        first_month = minute_bars(daily.filter(pl.col("date").is_in(minute_days[:21])), 0
                                  ).with_columns(date=pl.col("timestamp").dt.convert_time_zone(
                                      "America/New_York").dt.date())
        month_days = first_month.select("symbol", "date").n_unique()
        t0 = time.perf_counter()
        pandas_fields(first_month.to_pandas())
        pandas_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        daily_fields(first_month)
        aurora_month = time.perf_counter() - t0
        t0 = time.perf_counter()
        fields = load_daily_fields(root, "1Min")
        stored_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        stored = sorted({d for d in fields["date"].to_list()})
        for i in range(0, len(stored), 21):
            chunk = stored[i:i + 21]
            read = read_intraday(root, "1Min", start=chunk[0], end=chunk[-1])
            for day in chunk:
                summarize(read.filter(pl.col("date") == day))
        aurora_year = time.perf_counter() - t0
        pandas_rate = month_days / pandas_s
        print(f"daily fields, pandas idiom, first month ({month_days:,} symbol-days): "
              f"{pandas_s:.2f} s, {pandas_rate:,.0f} symbol-days/s")
        print(f"daily fields, Aurora, same month: {aurora_month:.2f} s, "
              f"{month_days / aurora_month:,.0f} symbol-days/s, "
              f"{pandas_s / aurora_month:.1f}x the pandas idiom")
        print(f"daily fields, Aurora, every stored day's bars read, verified and summed up "
              f"({fields.height:,} symbol-days): {aurora_year:.2f} s, "
              f"{fields.height / aurora_year:,.0f} symbol-days/s, "
              f"{fields.height / aurora_year / pandas_rate:.1f}x the pandas idiom's rate")
        print(f"daily fields, Aurora, the stored summaries read and verified: {stored_s:.2f} s"
              f", {fields.height / stored_s:,.0f} symbol-days/s")

        plain = AuroraConfig(data_dir=root, validation=lenient)
        with_family = plain.model_copy(update={"build": BuildConfig(intraday=True)})
        for name, config in (("full build, the 45", plain),
                             ("full build, 45 + intraday", with_family)):
            t0 = time.perf_counter()
            result = build_features(store, config, incremental=False)
            print(f"{name}: {time.perf_counter() - t0:.2f} s ({result.meta['feature_count']}"
                  f" features, {result.rows:,} rows)")
        daily.write_parquet(bars)
        import_bars(store, bars, config=plain, today=last + dt.timedelta(days=1))
        minutes = minute_bars(daily.filter(pl.col("date") == last), 0).with_columns(
            date=pl.col("timestamp").dt.convert_time_zone("America/New_York").dt.date())
        with istore.transaction("bench", base=istore.current_version()) as txn:
            write_days(txn, minutes.select(list(INTRADAY_SCHEMA)), summarize)
        t0 = time.perf_counter()
        result = build_features(store, with_family)
        print(f"one-session build, 45 + intraday: {time.perf_counter() - t0:.2f} s "
              f"({result.meta['build']['mode']}: {result.meta['build']['reason']})")
    print(f"peak RSS {_rss_mib():,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
