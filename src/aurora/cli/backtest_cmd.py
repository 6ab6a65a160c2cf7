"""`aurora backtest`, `aurora track` and `aurora report` (thin over `aurora.backtest.api`,
`aurora.ops.tracking` and `aurora.report`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aurora.cli.common import (
    ConfigOption,
    DataDirOption,
    ProgressOption,
    SchedulerOption,
    UniverseOption,
    command_run,
    make_config,
    print_lines,
)
from aurora.cli.progress import progress_bars
from aurora.universe import resolve_universe


def register(app: typer.Typer) -> None:
    @app.command("backtest")
    def backtest(ctx: typer.Context, data_dir: DataDirOption = None,
                 config: ConfigOption = None, universe: UniverseOption = None,
                 scheduler: SchedulerOption = None, progress: ProgressOption = True) -> None:
        """Trade the walk-forward's out-of-sample scores after costs ([backtest] in
        aurora.toml); writes backtest.json into a new version."""
        from aurora.backtest.api import backtest as run_backtest  # deferred: start-up time
        from aurora.cluster import connect

        cfg = make_config(config, data_dir=data_dir, universe=universe,
                          **{"compute.scheduler": scheduler})
        with command_run(ctx, "backtest", cfg, config_file=config) as run, \
                progress_bars(progress) as bars:
            chosen = resolve_universe(cfg, run.store)
            run.use_universe(chosen)
            with run.stage("backtest"), connect(cfg.compute.scheduler) as runner:
                result = run_backtest(run.store, cfg, universe=chosen, progress=bars,
                                      runner=runner)
        print_lines([*result.summary_lines(),
                     f"wrote backtest.json in version {run.store.current_version()}"])

    @app.command("track")
    def track(ctx: typer.Context, data_dir: DataDirOption = None,
              config: ConfigOption = None) -> None:
        """Score every published predictions.json whose horizon has passed (realised rank
        IC, top-minus-bottom and top-k returns) into aurora.db; alert on decay and on a
        probable leakage."""
        from aurora.ops.history import History  # deferred: start-up time
        from aurora.ops.tracking import track as run_track

        cfg = make_config(config, data_dir=data_dir)
        with command_run(ctx, "track", cfg, config_file=config) as run:
            with run.stage("track"):
                report = run_track(run.store, cfg, History(run.store.root))
            run.alert(report.alerts)
            run.add(rows=len(report.new))
        print_lines(report.summary_lines(cfg.track.window))

    @app.command("report")
    def report(ctx: typer.Context, data_dir: DataDirOption = None,
               config: ConfigOption = None,
               version: Annotated[str | None, typer.Option(
                   help="The version to describe (default: the latest).")] = None,
               out: Annotated[Path | None, typer.Option(
                   help="Also write the page to this file (required for an older "
                        "version).")] = None,
               progress: ProgressOption = True) -> None:
        """One self-contained HTML report of a version (data, feature health, model,
        backtest, tracking, today's ranking); published as report.html in a new version."""
        from aurora.report import report as run_report  # deferred: start-up time (plotly)

        cfg = make_config(config, data_dir=data_dir)
        with command_run(ctx, "report", cfg, config_file=config) as run, \
                progress_bars(progress) as bars, run.stage("report"):
            result = run_report(run.store, cfg, version=version, out=out, progress=bars)
        print_lines(result.summary_lines())
