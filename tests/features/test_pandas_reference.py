"""Each family against an independent pandas implementation on a random, gappy panel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aurora.calendar import sessions
from aurora.features.compute import compute_features

from .conftest import SECTORS, random_fundamentals, random_panel

W = 20
MP = 16  # 80% of a 20-session window


@pytest.fixture(scope="module")
def both():
    prices = random_panel(n_sessions=330, seed=21, missing=0.01)
    fund = random_fundamentals(prices)
    ours = compute_features(prices, sectors=SECTORS, fundamentals=fund).to_pandas()
    p = prices.to_pandas()
    p["date"] = pd.to_datetime(p["date"]).astype("datetime64[ns]")
    cal = pd.DatetimeIndex(sessions(p["date"].min().date(), p["date"].max().date())).astype(
        "datetime64[ns]")
    parts = []
    for sym, g in p.groupby("symbol"):
        idx = cal[(cal >= g["date"].min()) & (cal <= g["date"].max())]
        g = g.set_index("date").reindex(idx)
        g["symbol"] = sym
        g["pos"] = np.arange(len(g))
        parts.append(g.rename_axis("date").reset_index())
    ref = pd.concat(parts, ignore_index=True)
    ref["sector"] = ref["symbol"].map(SECTORS)
    by = ref.groupby("symbol")
    ref["r"] = by["close"].pct_change(fill_method=None)
    ref["dv"] = ref["close"] * ref["volume"]
    f = fund.to_pandas().sort_values("as_of")
    f["as_of"] = pd.to_datetime(f["as_of"]).astype("datetime64[ns]")
    closes = ref[["symbol", "date", "close"]].dropna().sort_values("date")
    f = pd.merge_asof(f, closes.rename(columns={"date": "as_of"}), on="as_of", by="symbol")
    f["shares"] = f["market_cap"] / f["close"]
    ref = pd.merge_asof(ref.sort_values("date"), f[["symbol", "as_of", "shares"]]
                        .rename(columns={"as_of": "date"}), on="date", by="symbol")
    ref = ref.sort_values(["symbol", "date"]).reset_index(drop=True)
    ours["date"] = pd.to_datetime(ours["date"]).astype("datetime64[ns]")
    return ref, ours


def roll(ref, col, w, fn, mp=None):
    return ref.groupby("symbol")[col].transform(
        lambda x: getattr(x.rolling(w, min_periods=mp or int(np.ceil(0.8 * w))), fn)())


def check(ref, ours, name, values):
    ref = ref.assign(expected=values)
    merged = ours[["date", "symbol", name]].merge(ref[["date", "symbol", "expected"]],
                                                  on=["date", "symbol"], how="left")
    assert len(merged) == len(ours)
    a, b = merged[name].to_numpy(float), merged["expected"].to_numpy(float)
    assert np.isfinite(a).sum() > 0.9 * len(a), name
    np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12, equal_nan=True, err_msg=name)


def test_price_family(both):
    ref, ours = both
    check(ref, ours, "f_ret_1d", ref["r"])
    check(ref, ours, "f_vol_20d", roll(ref, "r", W, "std"))
    check(ref, ours, "f_mom_12_1", ref.groupby("symbol")["close"].transform(
        lambda c: c.shift(21) / c.shift(252) - 1))
    lo, hi = roll(ref, "low", W, "min"), roll(ref, "high", W, "max")
    check(ref, ours, "f_rsv_20d", (ref["close"] - lo) / (hi - lo))


def test_volume_family(both):
    ref, ours = both
    prior = ref.groupby("symbol")["volume"].transform(
        lambda v: v.rolling(W, min_periods=MP).mean().shift(1))
    check(ref, ours, "f_volume_surprise", np.log((ref["volume"] + 1) / (prior + 1)))
    ref["illiq"] = ref["r"].abs() / ref["dv"]
    check(ref, ours, "f_amihud_illiquidity", 1e6 * roll(ref, "illiq", W, "mean"))
    ref["tau"] = ref["volume"] / ref["shares"]
    check(ref, ours, "f_turnover_20d", roll(ref, "tau", W, "mean"))
    ref["dvol"] = ref.groupby("symbol")["volume"].diff()
    ref["adv"] = ref["dvol"].abs()
    check(ref, ours, "f_vsumd_20d", roll(ref, "dvol", W, "mean") / roll(ref, "adv", W, "mean"))


def test_cross_sectional_family(both):
    ref, ours = both
    check(ref, ours, "f_cs_rank_ret", ref.groupby("date")["r"].rank(pct=True))
    ref["v5"] = roll(ref, "r", 5, "std")
    z = ref.groupby("date")["v5"].transform(lambda x: (x - x.mean()) / x.std())
    check(ref, ours, "f_cs_zscore_vol", z)
    ref["r20"] = ref.groupby("symbol")["close"].pct_change(20, fill_method=None)
    check(ref, ours, "f_rs_sector_ret_20d",
          ref["r20"] - ref.groupby(["date", "sector"])["r20"].transform("mean"))


def test_residual_family(both):
    ref, ours = both
    ref["m"] = ref.groupby("date")["r"].transform("mean")
    ref["mp"] = ref["m"].where(ref["r"].notna())
    g = ref.groupby("symbol")
    cov = g[["r", "mp"]].apply(
        lambda d: d["r"].rolling(60, min_periods=48).cov(d["mp"])).reset_index(level=0,
                                                                               drop=True)
    var = roll(ref, "mp", 60, "var", 48)
    ref["beta"] = cov.sort_index() / var
    check(ref, ours, "f_beta_mkt_60d", ref["beta"])
    ref["eps"] = ref["r"] - g["beta"].shift(1) * ref["m"]
    check(ref, ours, "f_ret_market_neutral", ref["eps"])
    check(ref, ours, "f_resid_vol_20d", roll(ref, "eps", W, "std"))
    ref["v20"] = roll(ref, "r", W, "std")
    check(ref, ours, "f_vol_sector_neutral",
          ref["v20"] - ref.groupby(["date", "sector"])["v20"].transform("mean"))
