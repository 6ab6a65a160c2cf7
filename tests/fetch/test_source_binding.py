"""A store is bound to its price source: another URL, or synthetic vs real, is refused
(or, asked explicitly, starts a new history); an up-to-date store still confirms its last
sessions with the server."""

from __future__ import annotations

import datetime as dt

import pytest
from fetch_fakeapi import KEY, SECRET, FakeAlpaca, make_bars

from aurora.config import AlpacaConfig, AuroraConfig, FetchConfig
from aurora.errors import ConfigError
from aurora.fetch import fetch_prices
from aurora.store import Store
from aurora.store.bars import read_prices
from aurora.universe import Universe

D = dt.date
SYMBOLS = ["AAA", "BBB", "CCC"]
UNIVERSE = Universe(tuple(SYMBOLS), {}, "test universe")
DEMO_URL, REAL_URL = "http://127.0.0.1:5000", "https://data.example.test"


def fetch(data_dir, api, clock, *, url=REAL_URL, end=D(2024, 2, 29), **fetch_settings):
    cfg = AuroraConfig(data_dir=data_dir,
                       alpaca=AlpacaConfig(key_id=KEY, secret_key=SECRET, data_url=url,
                                           base_url=url),
                       fetch=FetchConfig(**{"batch_size": 2, **fetch_settings}))
    return fetch_prices(cfg, universe=UNIVERSE, start=D(2024, 1, 2), end=end, progress=None,
                        sleep=clock.sleep, clock=clock.time, transport=api.transport())


def shifted(bars: dict[str, list[dict]], by: float) -> dict[str, list[dict]]:
    """Another market: the same sessions at other prices."""
    return {s: [{**b, "o": b["o"] + by, "h": b["h"] + by, "l": b["l"] + by, "c": b["c"] + by,
                 "vw": b["vw"] + by} for b in rows] for s, rows in bars.items()}


def test_synthetic_prices_are_never_extended_by_another_source(data_dir, clock):
    demo = FakeAlpaca(make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 3, 28)))
    fetch(data_dir, demo, clock, url=DEMO_URL, synthetic=True)
    store = Store(data_dir)
    before = store.current_version()
    manifest = store.manifest()
    assert manifest.params["synthetic"] is True and manifest.params["base_url"] == DEMO_URL
    entry = manifest.prices_entry()
    assert (entry.meta("source_url"), entry.meta("synthetic")) == (DEMO_URL, True)

    real = FakeAlpaca(shifted(demo.bars, 100.0))
    with pytest.raises(ConfigError) as info:
        fetch(data_dir, real, clock, end=D(2024, 3, 7))
    message = str(info.value)
    assert "\n" not in message and str(data_dir) in message
    assert f"fetched from {DEMO_URL} (synthetic demo data)" in message
    assert f"fetching from {REAL_URL} would mix sources" in message
    assert "--data-dir" in message and "--new-history" in message
    assert real.log == [] and store.current_version() == before  # no request, no version
    # the same URL is refused too when it is not (or no longer) the synthetic market
    with pytest.raises(ConfigError, match="synthetic demo data"):
        fetch(data_dir, demo, clock, url=DEMO_URL, end=D(2024, 3, 7))


def test_new_history_keeps_nothing_of_the_old_source(data_dir, clock):
    demo = FakeAlpaca(make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 3, 28)))
    fetch(data_dir, demo, clock, url=DEMO_URL, synthetic=True)
    real = FakeAlpaca(shifted(demo.bars, 100.0))
    report = fetch(data_dir, real, clock, end=D(2024, 3, 7), new_history=True)
    assert {r["start"] for r in real.bar_requests()} == {"2024-01-02T05:00:00Z"}  # everything
    store = Store(data_dir)
    prices = read_prices(store)
    assert prices["close"].min() > 100 and prices["date"].max() == D(2024, 3, 7)
    assert prices.height == 3 * 46  # Jan 2 .. Mar 7: only the new source's bars
    manifest = store.manifest()
    assert manifest.params["base_url"] == REAL_URL and manifest.params["synthetic"] is False
    assert manifest.params["new_history"] is True
    lines = "\n".join(report.summary_lines())
    assert f"fetched everything again: new history: the stored prices from {DEMO_URL}" in lines
    assert f"source: {REAL_URL} (feed sip, adjustment raw)" in lines
    # from now on the store is bound to the new source, without the flag
    real.log.clear()
    fetch(data_dir, real, clock, end=D(2024, 3, 14))
    assert real.bar_requests() and Store(data_dir).manifest().params["new_history"] is False


def test_another_feed_refetches_everything_and_says_so_in_the_summary(data_dir, clock):
    api = FakeAlpaca(make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 3, 28)))
    fetch(data_dir, api, clock)
    api.log.clear()
    report = fetch(data_dir, api, clock, end=D(2024, 3, 7), feed="iex")
    assert {r["start"] for r in api.bar_requests()} == {"2024-01-02T05:00:00Z"}
    assert any(line.startswith("fetched everything again: stored prices were fetched with "
                               "adjustment=raw, feed=sip") for line in report.summary_lines())


def test_an_up_to_date_store_still_confirms_its_last_sessions(data_dir, clock):
    bars = make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 2, 29))
    api = FakeAlpaca(bars)
    fetch(data_dir, api, clock, reconcile_cycle_runs=0)
    store = Store(data_dir)
    before = store.current_version()
    api.log.clear()
    report = fetch(data_dir, api, clock, reconcile_cycle_runs=0)  # nothing new to fetch
    # five sessions before Feb 29 is Feb 22: the overlap is re-read for every symbol
    assert {r["start"] for r in api.bar_requests()} == {"2024-02-22T05:00:00Z"}
    assert report.symbols_up_to_date == 3 and report.bars_fetched == 3 * 6
    assert report.restated == {} and store.current_version() == before
    # a server that no longer has the last stored sessions is noticed (a restatement)
    lacking = FakeAlpaca({s: [b for b in rows if b["t"] < "2024-02-26"]
                          for s, rows in bars.items()})
    report = fetch(data_dir, lacking, clock, reconcile_cycle_runs=0)
    assert report.restated == dict.fromkeys(SYMBOLS, "stored bar no longer served on 2024-02-26")
    assert report.version != before and report.date_max == D(2024, 2, 23)
