"""The test bed's commands of the `aurora` CLI (entry point `aurora.commands`).

`aurora emulator`: thin over `aurora_testbed.emulator`: builds a `MarketData` (synthetic by
default, or a Parquet bars file), starts an `EmulatorServer`, prints exactly one stdout line
`http://127.0.0.1:PORT` once it listens, and serves until SIGINT/SIGTERM. Everything else
goes to stderr. The secret is never printed.

`aurora demo`: `aurora_testbed.demo.run_demo` inside the command's run context, writing
into `./aurora-demo` by default (a directory of its own: its prices are synthetic).
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from aurora.calendar import last_completed_session
from aurora.cli.common import (
    ConfigOption,
    ProgressOption,
    command_run,
    console,
    make_config,
    parse_date_flag,
    print_lines,
)
from aurora.cli.progress import progress_bars
from aurora.errors import ConfigError, CredentialsError
from aurora.universe import default_universe, load_universe

DEFAULT_START = dt.date(2015, 1, 1)
DEMO_YEARS = 4  # as aurora_testbed.demo.DEMO_YEARS, not imported: start-up time
DEMO_DATA_DIR = Path("aurora-demo")  # as aurora_testbed.demo.DEMO_DATA_DIR, likewise


def register(app: typer.Typer) -> None:
    """Add `aurora emulator` and `aurora demo` to the CLI."""

    @app.command("demo")
    def demo(
        ctx: typer.Context,
        data_dir: Annotated[str, typer.Option(
            "--data-dir", help="Where to write the synthetic store (default ./aurora-demo; "
                               "a directory holding real prices is refused).")
        ] = str(DEMO_DATA_DIR),
        config: ConfigOption = None,
        years: Annotated[int, typer.Option(
            "--years", min=2, max=10, help="Years of synthetic history.")] = DEMO_YEARS,
        progress: ProgressOption = True,
    ) -> None:
        """Run the whole pipeline offline against the built-in Alpaca emulator.

        Everything it writes is synthetic and says so (manifests, predictions.json, summary).
        """
        # deferred: the whole pipeline would slow every `aurora` start (cli/main.py)
        from aurora_testbed.demo import run_demo

        cfg = make_config(config, data_dir=data_dir)
        with command_run(ctx, "demo", cfg, config_file=config) as run, \
                progress_bars(progress) as bars:
            result = run_demo(cfg, years=years, progress=bars, run=run)
        result.alerts = run.alerts
        print_lines(result.summary_lines())

    @app.command("emulator")
    def emulator(
        port: Annotated[int, typer.Option(
            "--port", help="Port on 127.0.0.1 (0: a free port).")] = 0,
        key_id: Annotated[str | None, typer.Option(
            "--key-id", envvar="APCA_API_KEY_ID", show_envvar=True,
            help="Accepted APCA-API-KEY-ID.")] = None,
        secret_key: Annotated[str | None, typer.Option(
            "--secret-key", envvar="APCA_API_SECRET_KEY", show_envvar=True,
            help="Accepted APCA-API-SECRET-KEY (never printed).")] = None,
        bars: Annotated[Path | None, typer.Option(
            "--bars", help="Serve this Parquet bars file instead of the synthetic market.")] = None,
        corporate_actions: Annotated[Path | None, typer.Option(
            "--corporate-actions", help="Corporate actions Parquet to serve with --bars.")] = None,
        start: Annotated[str | None, typer.Option(
            "--start", help="Synthetic market start (default 2015-01-01).")] = None,
        end: Annotated[str | None, typer.Option(
            "--end", help="Synthetic market end (default: last completed session).")] = None,
        universe: Annotated[Path | None, typer.Option(
            "--universe", help="Universe file for the synthetic market (default: built-in).")
        ] = None,
        seed: Annotated[int, typer.Option("--seed", help="Synthetic market seed.")] = 7,
        rate_limit: Annotated[int, typer.Option(
            "--rate-limit", help="Requests per key per minute before 429.")] = 200,
    ) -> None:
        """Serve an Alpaca-compatible market-data API on 127.0.0.1 (test and demo bed)."""
        # deferred: the synthetic market is not needed by `aurora --help` (cli/main.py)
        from aurora_testbed.emulator import EmulatorServer, MarketData

        missing = [name for name, value in (("--key-id / APCA_API_KEY_ID", key_id),
                                            ("--secret-key / APCA_API_SECRET_KEY", secret_key))
                   if not value]
        if missing:
            raise CredentialsError(f"the emulator needs credentials: set {' and '.join(missing)}")
        assert key_id is not None and secret_key is not None
        err = console(stderr=True)
        first = parse_date_flag(start, "--start")
        last = parse_date_flag(end, "--end")
        if bars is not None:
            if first or last or universe:
                raise ConfigError("--start, --end and --universe apply to the synthetic market, "
                                  "not to --bars")
            market = MarketData.from_parquet(bars, corporate_actions)
            source = str(bars)
        else:
            if corporate_actions is not None:
                raise ConfigError("--corporate-actions needs --bars")
            symbols = (load_universe(universe) if universe else default_universe()).symbols
            first = first or DEFAULT_START
            last = last or last_completed_session()
            err.print(f"generating the synthetic market: {len(symbols)} symbols, "
                      f"{first}..{last}, seed {seed}")
            market = MarketData.synthetic(symbols, first, last, seed=seed)
            source = "synthetic market"

        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set())
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        server = EmulatorServer(market, {key_id: secret_key}, rate_limit_per_minute=rate_limit,
                                port=port)
        try:
            try:
                url = server.start()
            except OSError as exc:
                raise ConfigError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror})") from None
            print(url, flush=True)
            err.print(f"serving {market.bars.height:,} bars of {len(market.symbols)} symbols "
                      f"({source}); Ctrl-C to stop")
            while not stop.wait(0.5):
                pass
        finally:
            server.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        err.print(f"emulator stopped after {len(server.request_log)} request(s)")
