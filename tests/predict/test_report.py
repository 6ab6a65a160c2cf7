"""`aurora report`: one self-contained HTML page per version, opened in headless Chromium.

The browser test drives Debian's `chromium` (installed by `scripts/dev.py test` when
missing) through Playwright with every request that leaves the file aborted and recorded.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from html import escape as html_escape
from pathlib import Path

import plotly.graph_objects as go
import polars as pl
import pytest

from aurora import calendar
from aurora.backtest.api import backtest
from aurora.config import BacktestConfig
from aurora.errors import StoreError
from aurora.ops.history import History
from aurora.ops.tracking import track
from aurora.predict import predict
from aurora.report import report
from aurora.report.page import Note, Section, render
from aurora.store import Store

SECTIONS = ("The run and its data", "Today's ranking", "The model, out of sample",
            "The backtest, after costs", "Published predictions, tracked", "Feature health")


@pytest.fixture(scope="module")
def reported(tmp_path_factory, helpers):
    """A store where predictions were published on five past dates and scored, the latest
    predicted and backtested: (store, config, report result)."""
    root = tmp_path_factory.mktemp("report") / "data"
    prices = helpers.planted_prices(n_symbols=30, n_sessions=320, seed=5)
    config = helpers.small_config(root, train_sessions=100, min_train_sessions=60,
                                  test_sessions=60).model_copy(update={
                                      "backtest": BacktestConfig(book_usd=1e6, top_k=5)})
    store = Store(root)
    helpers.publish(store, prices=prices, features=helpers.simple_features(prices),
                    sector_map=pl.DataFrame({"symbol": [f"S{i:03d}" for i in range(30)],
                                             "sector": ["Tech", "Energy", "Health"] * 10}))
    days = sorted(prices["date"].unique().to_list())
    for i in (270, 280, 290, 300):
        predict(store, config, decision_date=calendar.next_session(days[i]))
    predict(store, config)
    track(store, config, History(root))
    backtest(store, config)
    return store, config, report(store, config, out=root.parent / "copy.html")


def test_the_report_is_published_in_a_new_version_and_holds_every_section(reported):
    store, _, result = reported
    manifest = store.manifest()
    assert manifest.stage == "report" and result.version == manifest.version
    assert manifest.params["of_version"] == result.of_version == manifest.parent
    assert store.manifest(result.of_version).stage == "backtest"
    html = store.verified_path("report.html").read_text(encoding="utf-8")
    assert html == result.html == (result.out.read_text(encoding="utf-8"))
    for title in SECTIONS:
        assert f"<h2>{html_escape(title)}</h2>" in html
    # 1 coverage + IC, horizon, sector, quantile, cumulative + 4 backtest + 1 tracking + 3
    assert result.charts == 14
    assert "NO EVIDENCE OF SKILL" in html or "SKILL: out-of-sample" in html
    assert "https://" not in html.split("</script>", 1)[1]  # nothing after plotly.js links out


def test_an_older_version_is_written_to_a_file_only(reported, tmp_path):
    store, config, _ = reported
    older = store.versions()[0]
    latest = store.current_version()
    with pytest.raises(StoreError, match=r"is not the latest.*give --out FILE"):
        report(store, config, version=older)
    result = report(store, config, version=older, out=tmp_path / "old.html")
    assert store.current_version() == latest and result.version is None
    html = (tmp_path / "old.html").read_text(encoding="utf-8")
    assert "no walk-forward evaluation: run" in html and "no backtest: run" in html


def test_cli_report_prints_what_it_wrote(reported, tmp_path, capsys):
    from aurora.cli.main import main

    store, _, _ = reported
    out = tmp_path / "r.html"
    toml = tmp_path / "aurora.toml"
    toml.write_text("[predict]\ntrain_sessions = 100\nmin_train_sessions = 60\n")
    assert main(["report", "--data-dir", str(store.root), "--config", str(toml), "--out",
                 str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "charts" in printed and f"wrote {out}" in printed and "report.html in version" \
        in printed


# -- the browser ---------------------------------------------------------------------------
CHART_CHECK = """() => [...document.querySelectorAll('figure.chart')].map(fig => {
  const gd = fig.querySelector('.js-plotly-plot');
  const values = gd ? gd.data.reduce((n, t) => n + ['x', 'y', 'z'].reduce(
      (m, k) => m + (Array.isArray(t[k]) ? t[k].flat().filter(v => v !== null).length : 0),
      0), 0) : 0;
  const marks = gd ? [...gd.querySelectorAll('.mlayer path, .mlayer image')].filter(el =>
      (el.getAttribute('d') || el.getAttribute('href') || '').length > 10).length : 0;
  const svg = gd ? gd.querySelector('svg.main-svg') : null;
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {title: fig.dataset.title, values, marks, width: box.width, height: box.height,
          xtitle: gd ? !!gd.querySelector('.g-xtitle text') : false,
          ytitle: gd ? !!gd.querySelector('.g-ytitle text') : false};
})"""


@dataclass
class Opened:
    charts: list[dict]
    console_errors: list[str]
    outside_requests: list[str]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, ("Debian's chromium is required for the report's browser test: "
                  "`apt-get install chromium` (scripts/dev.py test installs it)")
    return path


def open_in_chromium(page_file: Path, screenshot: Path) -> Opened:
    """Open `page_file` offline: every request but the file itself is aborted and recorded;
    console errors and page errors are collected; a full-page screenshot is saved."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    outside: list[str] = []
    url = page_file.resolve().as_uri()

    def route(r) -> None:
        if r.request.url == url:
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(),
                                     args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(viewport={"width": 1300, "height": 900},
                                          offline=True)
            context.route("**/*", route)
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url, wait_until="load")
            page.wait_for_function("() => [...document.querySelectorAll('figure.chart')]"
                                   ".every(f => f.querySelector('svg.main-svg'))",
                                   timeout=30_000)
            charts = page.evaluate(CHART_CHECK)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return Opened(charts, errors, outside)


def assert_rendered(opened: Opened) -> None:
    """No console error, no request out of the file, every chart drawn with data."""
    assert opened.console_errors == []
    assert opened.outside_requests == []
    assert opened.charts, "no chart on the page"
    for chart in opened.charts:
        assert chart["values"] > 0 and chart["marks"] > 0, f"empty chart: {chart['title']}"
        assert chart["width"] > 100 and chart["height"] > 100, chart
        assert chart["title"] and chart["xtitle"] and chart["ytitle"], chart


def test_the_report_renders_offline_in_headless_chromium(reported, tmp_path):
    _, _, result = reported
    shot = tmp_path / "report.png"
    opened = open_in_chromium(result.out, shot)
    assert_rendered(opened)
    assert len(opened.charts) == result.charts
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


def test_a_chart_without_data_fails_the_browser_check(tmp_path):
    full = go.Figure(go.Scatter(x=[1, 2, 3], y=[1, 3, 2]))
    empty = go.Figure(go.Scatter(x=[], y=[]))
    for fig, name in ((full, "full"), (empty, "empty")):
        fig.update_layout(title={"text": name}, xaxis_title="x (units)",
                          yaxis_title="y (units)")
    page = tmp_path / "page.html"
    page.write_text(render("t", "s", [Section("one", "one", [full, Note("n"), empty])]),
                    encoding="utf-8")
    opened = open_in_chromium(page, tmp_path / "page.png")
    assert [c["title"] for c in opened.charts] == ["full", "empty"]
    with pytest.raises(AssertionError, match="empty chart: empty"):
        assert_rendered(opened)


def test_a_later_version_does_not_inherit_the_report_and_a_stale_backtest_is_named(
        reported, tmp_path):
    store, config, _ = reported
    root = tmp_path / "copy"
    shutil.copytree(store.root, root, symlinks=True)  # latest is a relative link
    copy = Store(root)
    assert "report.html" in copy.manifest().files
    with copy.transaction("test", base=copy.current_version()) as txn:  # e.g. a fetch
        (txn.path("note.txt")).write_text("x")
    assert "report.html" not in copy.manifest().files
    assert "backtest.json" in copy.manifest().files  # other outputs are inherited
    # features rebuilt over other prices: the inherited backtest no longer matches
    prices = pl.read_parquet(copy.verified_path("prices.parquet"))
    with copy.transaction("test", base=copy.current_version()) as txn:
        prices.with_columns(pl.col("close") * 1.01).write_parquet(txn.path("prices.parquet"))
    html = report(copy, config, out=tmp_path / "r.html").html
    assert "This backtest was run on other prices (version" in html
