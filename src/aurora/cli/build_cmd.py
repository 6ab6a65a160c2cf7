"""`aurora build`: the 45-feature panel from the stored prices (thin over the library)."""

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
    print_lines,
)
from aurora.cli.progress import progress_bars
from aurora.universe import resolve_universe

FullOption = Annotated[
    bool, typer.Option("--full", help="Compute every session, not only the ones added since "
                       "the last build."),
]
FeaturesOption = Annotated[
    str | None,
    typer.Option("--features", help="Your own features, added to the 45: a TOML file "
                 "([features] f_name = \"expression\") or a Python file defining FEATURES "
                 "(docs/user-features.md); default: build.features in aurora.toml."),
]

IntradayOption = Annotated[
    bool | None,
    typer.Option("--intraday/--no-intraday", help="Add the intraday family (features from "
                 "each day's minute bars, stored by `aurora fetch --timeframe 1Min`; "
                 "docs/intraday.md); default: build.intraday in aurora.toml."),
]


def register(app: typer.Typer) -> None:
    @app.command("build")
    def build(ctx: typer.Context, data_dir: DataDirOption = None, config: ConfigOption = None,
              universe: UniverseOption = None, features: FeaturesOption = None,
              intraday: IntradayOption = None, full: FullOption = False,
              scheduler: SchedulerOption = None, progress: ProgressOption = True) -> None:
        """Build the feature panel (the 45, plus --intraday and --features) from the stored
        prices; publish it if every gate passes, the lookahead proof of every feature
        included.

        The universe is the one recorded in the store (the last fetch's) unless --universe
        or the configuration names another. When only sessions were added since the last
        build, only those are computed (the summary says so and why); --full computes all.
        With --scheduler a full build runs out of core, one task per year on the Dask
        cluster; `compute.out_of_core = true` runs every build that way, in this process
        without a scheduler (docs/scale-out.md).
        """
        from aurora.cluster import connect
        from aurora.features import build_features  # deferred: start-up time (cli/main.py)

        cfg = make_config(config, data_dir=data_dir, universe=universe,
                          **{"build.features": features, "build.intraday": intraday,
                             "compute.scheduler": scheduler})
        reads = [cfg.build.features] if cfg.build.features is not None else []
        with command_run(ctx, "build", cfg, config_file=config, reads=reads) as run, \
                progress_bars(progress) as bars:
            chosen = resolve_universe(cfg, run.store)
            run.use_universe(chosen)
            with run.stage("build"), connect(cfg.compute.scheduler) as runner:
                result = build_features(run.store, cfg, universe=chosen, progress=bars,
                                        incremental=not full,
                                        runner=runner if cfg.compute.scheduler else None)
            run.add(rows=result.rows, symbols=result.symbols)
            run.record_quality("feature gates", result.gates.passed,
                               [f"{g.name}: {g.message}" for g in result.gates.failures])
        print_lines(result.summary_lines())
