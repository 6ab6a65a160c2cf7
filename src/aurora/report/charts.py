"""The report's charts: one Plotly figure per function, each titled, with both axes
labelled and their units stated.

Plotly because its runtime (plotly.js) ships inside the Python wheel, so the report embeds
it and opens offline with no other package or network request, and its SVG traces are
checkable in a browser test. Only SVG traces are used (no WebGL), so a headless browser
without a GPU draws them all. Inputs are the frames of `aurora.report.data`; nothing here
reads the store.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

HEIGHT = 380
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")


def _figure(title: str, x: str, y: str, *, height: int = HEIGHT) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title={"text": title, "x": 0.01}, height=height,
                      margin={"l": 70, "r": 20, "t": 50, "b": 55},
                      xaxis_title=x, yaxis_title=y, template="plotly_white",
                      legend={"orientation": "h", "y": -0.2})
    return fig


def _heatmap(frame: pl.DataFrame, row: str, value: str, title: str, y: str,
             colorbar: str, scale: str, zmin: float | None = None,
             zmax: float | None = None) -> go.Figure:
    wide = frame.pivot(on="month", index=row, values=value, sort_columns=True).sort(row)
    months = [c for c in wide.columns if c != row]
    rows = wide[row].to_list()
    height = max(HEIGHT, min(1400, 120 + 16 * len(rows)))
    fig = _figure(title, "month", y, height=height)
    fig.add_trace(go.Heatmap(
        x=months, y=rows, z=wide.select(months).to_numpy().tolist(), colorscale=scale,
        zmin=zmin, zmax=zmax, colorbar={"title": {"text": colorbar}},
        hovertemplate=f"%{{y}} %{{x|%Y-%m}}: %{{z:.3f}}<extra>{colorbar}</extra>"))
    fig.update_yaxes(type="category", autorange="reversed",
                     dtick=1 if len(rows) <= 80 else None)  # every name while they fit
    return fig


def coverage_heatmap(frame: pl.DataFrame) -> go.Figure:
    """symbol x month share of sessions with a bar (`data.coverage`), in percent."""
    pct = frame.with_columns(share=pl.col("share") * 100)
    return _heatmap(pct, "symbol", "share", "Coverage: bars per NYSE session, by symbol and "
                    "month", "symbol", "bars / sessions (%)", "Blues", 0, 100)


def missing_heatmap(frame: pl.DataFrame) -> go.Figure:
    """feature x month missing share (`data.missing_share`), in percent."""
    pct = frame.with_columns(share=pl.col("share") * 100)
    return _heatmap(pct, "feature", "share", "Feature health: missing values by feature "
                    "and month", "feature", "missing (% of rows)", "Reds", 0, 100)


def dispersion_heatmap(frame: pl.DataFrame) -> go.Figure:
    """feature x month dispersion ratio (`data.dispersion`)."""
    return _heatmap(frame, "feature", "ratio", "Feature health: cross-sectional dispersion "
                    "by month, relative to the feature's usual", "feature",
                    "std / median std (ratio)", "RdBu", 0, 2)


def drift_bars(frame: pl.DataFrame, recent: int) -> go.Figure:
    """PSI per feature (`data.drift`) with the usual 0.1 and 0.25 reading lines."""
    frame = frame.sort("psi", descending=True, nulls_last=True)
    fig = _figure(f"Feature drift: PSI of the last {recent} sessions against the "
                  "training window", "feature", "population stability index (unitless)")
    fig.add_trace(go.Bar(x=frame["feature"].to_list(), y=frame["psi"].to_list(),
                         marker_color=PALETTE[0], name="PSI"))
    for level, label in ((0.1, "shift 0.1"), (0.25, "large shift 0.25")):
        fig.add_hline(y=level, line_dash="dash", line_color="#888",
                      annotation_text=label, annotation_position="top right")
    return fig


def ic_over_time(frame: pl.DataFrame, window: int, model: str) -> go.Figure:
    """Daily rank IC, and the rolling means of IC and rank IC (`data.rolling_ic`)."""
    fig = _figure(f"Model {model}: out-of-sample IC over time ({window}-session rolling "
                  "mean)", "feature date", "correlation with the forward return")
    dates = frame["date"].to_list()
    fig.add_trace(go.Scatter(x=dates, y=frame["rank_ic"].to_list(), mode="lines",
                             name="daily rank IC", line={"color": "#c7c7c7", "width": 1}))
    fig.add_trace(go.Scatter(x=dates, y=frame["rank_ic_mean"].to_list(), mode="lines",
                             name="rank IC, rolling mean", line={"color": PALETTE[0]}))
    fig.add_trace(go.Scatter(x=dates, y=frame["ic_mean"].to_list(), mode="lines",
                             name="IC, rolling mean", line={"color": PALETTE[4]}))
    fig.add_hline(y=0, line_color="#444", line_width=1)
    return fig


def _ic_bars(labels: list, frame: pl.DataFrame, title: str, x: str) -> go.Figure:
    fig = _figure(title, x, "mean daily rank IC (± 1 Newey-West s.e.)")
    fig.update_xaxes(type="category")
    fig.add_trace(go.Bar(x=labels, y=frame["rank_ic"].to_list(), marker_color=PALETTE[0],
                         error_y={"type": "data", "array": frame["se"].to_list()},
                         name="rank IC"))
    fig.add_hline(y=0, line_color="#444", line_width=1)
    return fig


def ic_by_horizon_bars(frame: pl.DataFrame) -> go.Figure:
    """`data.ic_by_horizon`."""
    fig = _ic_bars([str(h) for h in frame["horizon"]], frame,
                   "Rank IC by horizon (same scores, longer and shorter returns)",
                   "forward-return horizon (sessions)")
    return fig


def ic_by_sector_bars(frame: pl.DataFrame) -> go.Figure:
    """`data.ic_by_sector`."""
    return _ic_bars(frame["sector"].to_list(), frame, "Rank IC within each sector",
                    "sector")


def quantile_bars(frame: pl.DataFrame, horizon: int) -> go.Figure:
    """`data.quantile_means`, in basis points."""
    fig = _figure(f"Mean {horizon}-session forward return by score quantile",
                  "score quantile (1 = lowest score)",
                  f"mean {horizon}-session return (bps)")
    fig.add_trace(go.Bar(x=[str(q) for q in frame["quantile"]],
                         y=[None if v is None else v * 1e4 for v in frame["mean_return"]],
                         marker_color=PALETTE[0], name="mean return"))
    return fig


def cumulative_quantiles(frame: pl.DataFrame) -> go.Figure:
    """`data.cumulative_quantile_returns`, in percent."""
    fig = _figure("Cumulative return of each score quantile, rebalanced every session, "
                  "no cost", "feature date", "cumulative return (%)")
    quantiles = sorted(frame["quantile"].unique().to_list())
    for i, q in enumerate(quantiles):
        part = frame.filter(pl.col("quantile") == q)
        fig.add_trace(go.Scatter(x=part["date"].to_list(),
                                 y=(part["cumulative"] * 100).to_list(), mode="lines",
                                 name=f"quantile {q}",
                                 line={"color": PALETTE[i % len(PALETTE)]}))
    return fig


def equity_lines(daily: pl.DataFrame) -> go.Figure:
    """Growth of 1 USD: gross, net and the equal-weight benchmark (backtest daily)."""
    fig = _figure("Backtest: growth of 1 USD, gross and net of costs, against the "
                  "equal-weight universe", "date", "value of 1 USD invested (USD)")
    for column, name, color in (("gross", "gross", PALETTE[2]), ("net", "net", PALETTE[0]),
                                ("benchmark", "equal-weight universe", "#7f7f7f")):
        fig.add_trace(go.Scatter(x=daily["date"].to_list(),
                                 y=(daily[column] + 1.0).cum_prod().to_list(), mode="lines",
                                 name=name, line={"color": color}))
    return fig


def drawdown_area(daily: pl.DataFrame) -> go.Figure:
    """The net equity's drawdown, in percent."""
    fig = _figure("Backtest: drawdown of the net equity from its running peak", "date",
                  "drawdown (%)")
    fig.add_trace(go.Scatter(x=daily["date"].to_list(), y=(daily["drawdown"] * 100).to_list(),
                             mode="lines", fill="tozeroy", name="drawdown",
                             line={"color": PALETTE[1]}))
    return fig


def turnover_lines(daily: pl.DataFrame, window: int) -> go.Figure:
    """Traded value over equity per session, in percent, with its rolling mean."""
    pct = (daily["traded"] / daily["equity"] * 100)
    fig = _figure("Backtest: turnover (traded value / book) per session", "date",
                  "turnover (% of book per session)")
    dates = daily["date"].to_list()
    fig.add_trace(go.Scatter(x=dates, y=pct.to_list(), mode="lines", name="daily",
                             line={"color": "#c7c7c7", "width": 1}))
    fig.add_trace(go.Scatter(x=dates, y=pct.rolling_mean(window, min_samples=1).to_list(),
                             mode="lines", name=f"{window}-session mean",
                             line={"color": PALETTE[0]}))
    return fig


def cost_bars(frame: pl.DataFrame) -> go.Figure:
    """`data.monthly_costs`, stacked by kind, in USD."""
    fig = _figure("Backtest: costs by month and kind", "month", "cost (USD)")
    for i, kind in enumerate(sorted(frame["kind"].unique().to_list())):
        part = frame.filter(pl.col("kind") == kind)
        fig.add_trace(go.Bar(x=part["month"].to_list(), y=part["usd"].to_list(), name=kind,
                             marker_color=PALETTE[i % len(PALETTE)]))
    fig.update_layout(barmode="stack")
    return fig


def tracking_lines(frame: pl.DataFrame, window: int) -> go.Figure:
    """Realised rank IC of each published prediction (frame: decision_date, rank_ic,
    walk_forward_rank_ic), its rolling mean and the walk-forward's expectation."""
    fig = _figure("Published predictions: realised rank IC once their horizon passed",
                  "decision date", "rank IC (correlation)")
    dates = frame["decision_date"].to_list()
    fig.add_trace(go.Bar(x=dates, y=frame["rank_ic"].to_list(), name="realised rank IC",
                         marker_color="#9ecae1"))
    fig.add_trace(go.Scatter(
        x=dates, y=frame["rank_ic"].rolling_mean(window, min_samples=1).to_list(),
        mode="lines+markers", name=f"rolling mean ({window} decisions)",
        line={"color": PALETTE[0]}))
    fig.add_trace(go.Scatter(x=dates, y=frame["walk_forward_rank_ic"].to_list(),
                             mode="lines", name="walk-forward rank IC",
                             line={"color": PALETTE[4], "dash": "dash"}))
    fig.add_hline(y=0, line_color="#444", line_width=1)
    return fig
