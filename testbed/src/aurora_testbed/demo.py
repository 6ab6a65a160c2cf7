"""`run_demo`: Aurora's whole pipeline offline, against an in-process Alpaca emulator.

The emulator serves the synthetic market for the universe on 127.0.0.1; its key and secret
are random, held in memory only and set on the configuration programmatically (never in the
environment or a file). The pipeline itself is production code: `aurora.ops.run_pipeline`
with the production fetch client over real HTTP.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence

from pydantic import SecretStr

from aurora import calendar
from aurora.config import AlpacaConfig, AuroraConfig
from aurora.errors import AuroraError, ConfigError
from aurora.ops.pipeline import PipelineResult, run_pipeline
from aurora.ops.runner import RunContext
from aurora.progress import Progress
from aurora.redaction import redact_url
from aurora.store import Store
from aurora.store.files import PRICES
from aurora.universe import Universe, default_universe
from aurora_testbed.emulator import EmulatorServer, MarketData

DEMO_YEARS = 4  # also the default of `aurora demo --years`
DEMO_RATE_LIMIT = 1000  # requests a minute: the emulator is local, do not wait on it


def demo_window(now: dt.datetime | None = None, years: int = DEMO_YEARS
                ) -> tuple[dt.date, dt.date]:
    """(first, last) session of the demo: `years` back to the last completed session."""
    end = calendar.last_completed_session(now)
    start = calendar.next_session(end.replace(year=end.year - years, day=min(end.day, 28)))
    return start, end


def refuse_foreign_store(store: Store) -> None:
    """The demo must not mix synthetic bars into a store fetched from a real API."""
    try:
        writer = store.origin(PRICES)
    except AuroraError:
        return  # an unreadable store: the fetch stage reports it properly
    source = writer.params.get("base_url") if writer is not None else None
    if source and not str(source).startswith(("http://127.0.0.1", "http://localhost")):
        raise ConfigError(f"{store.root} holds prices fetched from {redact_url(source)}; "
                          "run the demo in another directory (--data-dir)")


def run_demo(
    config: AuroraConfig,
    *,
    symbols: Sequence[str] | None = None,
    years: int = DEMO_YEARS,
    progress: Progress | None = None,
    seed: int = 7,
    run: RunContext | None = None,
) -> PipelineResult:
    """The whole pipeline offline against an in-process emulator (module docstring)."""
    universe = default_universe()
    if symbols is not None:
        universe = Universe(tuple(symbols), {s: universe.sectors[s] for s in symbols
                                             if s in universe.sectors}, "demo universe")
    refuse_foreign_store(Store(config.data_dir))
    start, end = demo_window(years=years)
    market = MarketData.synthetic(universe.symbols, start, end, seed=seed)
    key_id, secret = f"DEMO{secrets.token_hex(8).upper()}", secrets.token_urlsafe(32)
    rate = max(config.fetch.rate_limit_per_minute, DEMO_RATE_LIMIT)
    server = EmulatorServer(market, {key_id: secret}, rate_limit_per_minute=rate)
    url = server.start()
    try:
        demo_config = config.model_copy(update={
            "alpaca": AlpacaConfig(key_id=SecretStr(key_id), secret_key=SecretStr(secret),
                                   data_url=url),
            "fetch": config.fetch.model_copy(update={"rate_limit_per_minute": rate}),
        })
        return run_pipeline(demo_config, command="demo", universe=universe, start=start,
                            end=end, progress=progress, run=run)
    finally:
        server.stop()
