"""`aurora fetch`, `aurora import sector-map|fundamentals|bars` (thin wrappers over the
library)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from aurora.cli.common import (
    ConfigOption,
    DataDirOption,
    EndOption,
    ProgressOption,
    StartOption,
    UniverseOption,
    command_run,
    make_config,
    parse_date_flag,
    path_flag,
    print_lines,
)
from aurora.cli.progress import progress_bars
from aurora.errors import ConfigError
from aurora.reference import ImportResult, import_fundamentals, import_sector_map
from aurora.store import Store
from aurora.universe import resolve_universe

_FEEDS = ("iex", "sip")

NewHistoryOption = Annotated[
    bool,
    typer.Option("--new-history", help="Start a new price history here: fetch everything "
                 "again, keeping nothing of the stored prices (needed to switch sources)."),
]


def _choice(value: str | None, flag: str, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise ConfigError(f"{flag} {value!r}: expected one of {', '.join(allowed)}")
    return value


def _import_reference(ctx: typer.Context, file: Path, data_dir: str | None,
                      config: str | None, importer: Callable[[Store, Path], ImportResult]
                      ) -> None:
    """One reference import (`aurora import sector-map` or `fundamentals`) as a recorded run."""
    cfg = make_config(config, data_dir=data_dir)
    with command_run(ctx, "import", cfg, config_file=config, reads=[file]) as run, \
            run.stage("import"):
        result = importer(run.store, file)
        run.add(rows=result.rows, symbols=result.symbols)
    print_lines(result.summary_lines())


def register(app: typer.Typer) -> None:
    @app.command("fetch")
    def fetch(
        ctx: typer.Context,
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
        universe: UniverseOption = None,
        start: StartOption = None,
        end: EndOption = None,
        feed: Annotated[str | None, typer.Option("--feed", help="iex|sip (default sip).")] = None,
        new_history: NewHistoryOption = False,
        timeframe: Annotated[str, typer.Option(
            "--timeframe", help="1Day (default: the price store), or intraday bars into "
            "their own store: 1Min, 5Min, 15Min, 30Min, 1Hour.")] = "1Day",
        progress: ProgressOption = True,
    ) -> None:
        """Fetch daily bars from Alpaca into the validated, versioned price store, or
        intraday bars (--timeframe 1Min...) into data/intraday/<timeframe>.

        Credentials and endpoints: APCA_API_KEY_ID, APCA_API_SECRET_KEY, APCA_API_DATA_URL,
        APCA_API_BASE_URL (the trading API, asked which symbols stopped trading).
        A store holding prices from another source is refused unless --new-history.
        """
        from aurora.fetch import fetch_prices  # deferred: start-up time (cli/main.py)

        cfg = make_config(config, data_dir=data_dir, universe=universe, **{
            "fetch.feed": _choice(feed, "--feed", _FEEDS),
            "fetch.new_history": True if new_history else None,
        })
        first, last = parse_date_flag(start, "--start"), parse_date_flag(end, "--end")
        if timeframe not in ("1Day", "1D"):
            _fetch_intraday(ctx, cfg, config, timeframe, first, last, progress)
            return
        with command_run(ctx, "fetch", cfg, config_file=config) as run, \
                progress_bars(progress) as bars:
            chosen = resolve_universe(cfg, run.store)
            run.use_universe(chosen)
            with run.stage("fetch"):
                report = fetch_prices(cfg, universe=chosen, start=first, end=last,
                                      progress=bars)
            run.add(rows=report.bars, symbols=report.symbols, requests=report.requests,
                    retries=report.retries)
            run.record_quality("fetch validation", True, warnings=report.warnings)
        print_lines(report.summary_lines())

    def _fetch_intraday(ctx: typer.Context, cfg, config, timeframe: str, first, last,
                        progress: bool) -> None:
        from aurora.intraday import check_intraday_timeframe, fetch_intraday

        check_intraday_timeframe(timeframe)
        with command_run(ctx, "fetch", cfg, config_file=config) as run, \
                progress_bars(progress) as bars:
            chosen = resolve_universe(cfg, run.store)
            with run.stage(f"fetch {timeframe}"):
                report = fetch_intraday(cfg, timeframe, universe=chosen, start=first,
                                        end=last, progress=bars)
            run.add(rows=report.bars, symbols=report.symbols, requests=report.requests,
                    retries=report.retries)
            run.record_quality(f"{timeframe} validation", True,
                               warnings=report.validation.warnings())
        print_lines(report.summary_lines())

    import_app = typer.Typer(help="Import reference data, or another vendor's bars, into the "
                             "store.",
                             no_args_is_help=True)
    app.add_typer(import_app, name="import")

    @import_app.command("sector-map")
    def sector_map(
        ctx: typer.Context,
        file: Annotated[Path, typer.Argument(help="CSV or Parquet with symbol, sector.")],
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
    ) -> None:
        """Import a sector map into data/latest/sector_map.parquet."""
        _import_reference(ctx, file, data_dir, config, import_sector_map)

    @import_app.command("fundamentals")
    def fundamentals(
        ctx: typer.Context,
        file: Annotated[Path, typer.Argument(
            help="CSV or Parquet with symbol, as_of and numeric columns.")],
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
    ) -> None:
        """Import point-in-time fundamentals into data/latest/fundamentals.parquet."""
        _import_reference(ctx, file, data_dir, config, import_fundamentals)

    @import_app.command("bars")
    def bars(
        ctx: typer.Context,
        path: Annotated[str, typer.Argument(
            help="A CSV or Parquet file, or a directory of them: date, symbol, open, high, "
            "low, close, volume (raw, unadjusted), optional vwap, trade_count.")],
        actions: Annotated[str | None, typer.Option(
            "--actions", help="Corporate actions (CSV or Parquet file or directory, the "
            "store's schema); without it the table is empty.")] = None,
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
        new_history: Annotated[bool, typer.Option(
            "--new-history", help="Replace prices of another source (a fetch, another "
            "import) with the imported bars only.")] = False,
    ) -> None:
        """Import raw daily bars from another vendor's files (validated like a fetch).

        Prices of another source (a fetch, another import) are refused unless
        --new-history."""
        from aurora.importbars import import_bars  # deferred: start-up time (cli/main.py)

        source = path_flag(path, "PATH")
        given = path_flag(actions, "--actions")
        assert source is not None
        cfg = make_config(config, data_dir=data_dir)
        with command_run(ctx, "import", cfg, config_file=config,
                         reads=[p for p in (source, given) if p is not None]) as run, \
                run.stage("import"):
            result = import_bars(run.store, source, config=cfg, actions=given,
                                 new_history=new_history)
            for file in result.files:
                run.note_read(file)
            run.use_universe(result.universe)
            run.add(rows=result.rows, symbols=result.symbols)
            run.record_quality("import validation", True, warnings=result.warnings)
        print_lines(result.summary_lines())
