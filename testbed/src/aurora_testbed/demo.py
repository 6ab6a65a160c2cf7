"""`run_demo`: Aurora's whole pipeline offline, against an in-process Alpaca emulator.

The emulator serves the synthetic market for the universe on 127.0.0.1; its key and secret
are random, held in memory only and set on the configuration programmatically (never in the
environment or a file). The pipeline itself is production code: `aurora.ops.run_pipeline`
with the production fetch client over real HTTP.

Synthetic prices never pass for market data:
- the demo writes into a directory of its own (`DEMO_DATA_DIR`, `./aurora-demo`, by
  default in `aurora demo`) and refuses one holding prices that are not synthetic;
- it fetches with `fetch.synthetic` set, so the prices' manifest entry and the fetch's
  params say `synthetic: true` (every later version inherits the entry), and
  predictions.json made from them says `"synthetic": true` in its `inputs`, whoever makes
  it later; a real fetch into the directory is refused (`aurora.fetch.source`);
- each demo starts a new history (`fetch.new_history`): its emulator is new every time;
- `DemoResult.summary_lines()` says it in its first lines.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Sequence
from pathlib import Path

from pydantic import SecretStr

from aurora import calendar
from aurora.config import AlpacaConfig, AuroraConfig
from aurora.errors import AuroraError, ConfigError
from aurora.fetch.source import stored_source
from aurora.ops.pipeline import PipelineResult, run_pipeline
from aurora.ops.runner import RunContext
from aurora.progress import Progress
from aurora.redaction import redact_url
from aurora.store import Store
from aurora.universe import Universe, default_universe
from aurora_testbed.emulator import EmulatorServer, MarketData

DEMO_YEARS = 4  # also the default of `aurora demo --years`
DEMO_RATE_LIMIT = 1000  # requests a minute: the emulator is local, do not wait on it
DEMO_DATA_DIR = Path("aurora-demo")  # the default of `aurora demo --data-dir`
SYNTHETIC_NOTE = ("SYNTHETIC DATA: prices from the test bed's seeded synthetic market, not a "
                  "real one; never trade on these rankings")


@dataclasses.dataclass
class DemoResult(PipelineResult):
    """A `PipelineResult` whose summary says, first, that its data is synthetic."""

    def summary_lines(self) -> list[str]:
        lines = super().summary_lines()
        return [f"{lines[0]} (synthetic)", SYNTHETIC_NOTE, *lines[1:]]


def demo_window(now: dt.datetime | None = None, years: int = DEMO_YEARS
                ) -> tuple[dt.date, dt.date]:
    """(first, last) session of the demo: `years` back to the last completed session."""
    end = calendar.last_completed_session(now)
    start = calendar.next_session(end.replace(year=end.year - years, day=min(end.day, 28)))
    return start, end


def refuse_foreign_store(store: Store) -> None:
    """The demo must not mix synthetic bars into a store of prices that are not synthetic.

    Prices recorded as synthetic are the demo's; prices recorded before the flag existed
    are accepted only from a local emulator (127.0.0.1 or localhost).
    """
    try:
        source = stored_source(store)
    except AuroraError:
        return  # an unreadable store: the fetch stage reports it properly
    if source is None or source.synthetic:
        return
    url = source.url or "an unknown source"
    if not url.startswith(("http://127.0.0.1", "http://localhost")):
        raise ConfigError(f"{store.root} holds prices fetched from {redact_url(url)}, not "
                          "synthetic ones; run the demo in another directory (--data-dir)")


def run_demo(
    config: AuroraConfig,
    *,
    symbols: Sequence[str] | None = None,
    years: int = DEMO_YEARS,
    progress: Progress | None = None,
    seed: int = 7,
    run: RunContext | None = None,
) -> DemoResult:
    """The whole pipeline offline against an in-process emulator (module docstring).

    Writes into `config.data_dir` (the CLI's default is `DEMO_DATA_DIR`). Raises
    ConfigError when that directory holds prices that are not synthetic.
    """
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
                                   data_url=url, base_url=url),
            "fetch": config.fetch.model_copy(update={"rate_limit_per_minute": rate,
                                                     "synthetic": True, "new_history": True}),
        })
        result = run_pipeline(demo_config, command="demo", universe=universe, start=start,
                              end=end, progress=progress, run=run)
    finally:
        server.stop()
    return DemoResult(**{f.name: getattr(result, f.name)
                         for f in dataclasses.fields(PipelineResult)})
