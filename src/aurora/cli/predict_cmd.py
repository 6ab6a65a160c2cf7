"""`aurora predict`, `aurora evaluate` (thin over `aurora.predict`)."""

from __future__ import annotations

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
    parse_date_flag,
    print_lines,
)
from aurora.cli.progress import progress_bars
from aurora.universe import resolve_universe

DecisionDateOption = Annotated[
    str | None,
    typer.Option("--decision-date", help="Session to rank for, YYYY-MM-DD (default: the "
                 "next NYSE session after the last stored one)."),
]


def register(app: typer.Typer) -> None:
    @app.command("predict")
    def predict(
        ctx: typer.Context,
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
        universe: UniverseOption = None,
        decision_date: DecisionDateOption = None,
        progress: ProgressOption = True,
    ) -> None:
        """Train point-in-time and rank the universe for a decision date."""
        from aurora import predict as stage  # deferred: start-up time (cli/main.py)

        cfg = make_config(config, data_dir=data_dir, universe=universe)
        day = parse_date_flag(decision_date, "--decision-date")
        with command_run(ctx, "predict", cfg, config_file=config) as run, \
                progress_bars(progress) as bars:
            chosen = resolve_universe(cfg, run.store)
            run.use_universe(chosen)
            with run.stage("predict"):
                result = stage.predict(run.store, cfg, decision_date=day, universe=chosen,
                                       progress=bars)
            run.add(symbols=int(result.scores["score"].is_not_null().sum()))
        print_lines(result.summary_lines())

    @app.command("evaluate")
    def evaluate(ctx: typer.Context, data_dir: DataDirOption = None, config: ConfigOption = None,
                 universe: UniverseOption = None, scheduler: SchedulerOption = None,
                 preclose: Annotated[bool, typer.Option(
                     "--preclose", help="Evaluate the pre-close variant (features as of "
                     "stream.cut_time on the stored 1Min bars) beside the close-to-close "
                     "model.")] = False,
                 progress: ProgressOption = True) -> None:
        """Purged walk-forward evaluation of the model and the baseline (with --scheduler,
        one task per fold on the Dask cluster)."""
        from aurora import predict as stage  # deferred: start-up time (cli/main.py)
        from aurora.cluster import connect

        cfg = make_config(config, data_dir=data_dir, universe=universe,
                          **{"compute.scheduler": scheduler})
        if preclose:
            from aurora.predict.preclose_api import evaluate_preclose, summary_lines

            with command_run(ctx, "evaluate", cfg, config_file=config) as run, \
                    progress_bars(progress) as bars:
                chosen = resolve_universe(cfg, run.store)
                run.use_universe(chosen)
                with run.stage("evaluate-preclose"):
                    found = evaluate_preclose(run.store, cfg, universe=chosen, progress=bars)
            print_lines([*summary_lines(found), "wrote evaluation_preclose.json in version "
                         f"{run.store.current_version()}"])
            return
        with command_run(ctx, "evaluate", cfg, config_file=config) as run, \
                progress_bars(progress) as bars:
            chosen = resolve_universe(cfg, run.store)
            run.use_universe(chosen)
            with run.stage("evaluate"), connect(cfg.compute.scheduler) as runner:
                report = stage.evaluate(run.store, cfg, universe=chosen, progress=bars,
                                        runner=runner)
                where = runner.describe()
        trained = where if where == "in process" else f"on {where}"
        print_lines([*report.report_lines(), f"folds trained {trained}",
                     f"wrote evaluation.json in version {run.store.current_version()}"])
