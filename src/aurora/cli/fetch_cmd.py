"""`aurora fetch`, `aurora import sector-map|fundamentals` (thin wrappers over the library)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aurora.cli.common import (
    ConfigOption,
    DataDirOption,
    EndOption,
    StartOption,
    UniverseOption,
    console,
    make_config,
    parse_date_flag,
)
from aurora.errors import ConfigError

_ADJUSTMENTS = ("raw", "split", "dividend", "all")
_FEEDS = ("iex", "sip")


def _choice(value: str | None, flag: str, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise ConfigError(f"{flag} {value!r}: expected one of {', '.join(allowed)}")
    return value


def register(app: typer.Typer) -> None:
    @app.command("fetch")
    def fetch(
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
        universe: UniverseOption = None,
        start: StartOption = None,
        end: EndOption = None,
        adjustment: Annotated[str | None, typer.Option(
            "--adjustment", help="raw|split|dividend|all (default all).")] = None,
        feed: Annotated[str | None, typer.Option("--feed", help="iex|sip (default sip).")] = None,
        progress: Annotated[bool, typer.Option(
            "--progress/--no-progress", help="Progress bar on stderr.")] = True,
    ) -> None:
        """Fetch daily bars from Alpaca into the validated, versioned price store.

        Credentials and endpoint: APCA_API_KEY_ID, APCA_API_SECRET_KEY, APCA_API_DATA_URL.
        """
        from aurora.fetch import fetch_prices
        from aurora.ops.runner import run_context
        from aurora.store import Store

        cfg = make_config(config, data_dir=data_dir, universe=universe, **{
            "fetch.adjustment": _choice(adjustment, "--adjustment", _ADJUSTMENTS),
            "fetch.feed": _choice(feed, "--feed", _FEEDS),
        })
        first, last = parse_date_flag(start, "--start"), parse_date_flag(end, "--end")
        with run_context(Store(cfg.data_dir), cfg, "fetch") as run, run.stage("fetch"):
            report = fetch_prices(cfg, start=first, end=last, progress=progress)
            run.add(rows=report.bars, symbols=report.symbols, requests=report.requests,
                    retries=report.retries)
            run.record_quality("fetch validation", True, warnings=report.warnings)
        out = console()
        for line in report.summary_lines():
            out.print(line, markup=False)

    import_app = typer.Typer(help="Import reference data into the store.",
                             no_args_is_help=True)
    app.add_typer(import_app, name="import")

    @import_app.command("sector-map")
    def sector_map(
        file: Annotated[Path, typer.Argument(help="CSV or Parquet with symbol, sector.")],
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
    ) -> None:
        """Import a sector map into data/latest/sector_map.parquet."""
        from aurora.reference import import_sector_map
        from aurora.store import Store

        cfg = make_config(config, data_dir=data_dir)
        result = import_sector_map(Store(cfg.data_dir), file)
        for line in result.summary_lines():
            console().print(line, markup=False)

    @import_app.command("fundamentals")
    def fundamentals(
        file: Annotated[Path, typer.Argument(
            help="CSV or Parquet with symbol, as_of and numeric columns.")],
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
    ) -> None:
        """Import point-in-time fundamentals into data/latest/fundamentals.parquet."""
        from aurora.reference import import_fundamentals
        from aurora.store import Store

        cfg = make_config(config, data_dir=data_dir)
        result = import_fundamentals(Store(cfg.data_dir), file)
        for line in result.summary_lines():
            console().print(line, markup=False)
