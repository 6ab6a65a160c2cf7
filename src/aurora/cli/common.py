"""Shared CLI plumbing: options, configuration loading, one-line error reporting."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from aurora.config import AuroraConfig, load_config
from aurora.errors import ConfigError, StageNotAvailable

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default ./data, env AURORA_DATA_DIR)."),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="TOML configuration file (default ./aurora.toml, env AURORA_CONFIG)."
    ),
]


def console(stderr: bool = False) -> Console:
    """A rich console for human-readable output (stderr for progress and errors)."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def make_config(config: Path | None, **overrides: Any) -> AuroraConfig:
    """Load configuration with CLI flags as dotted-key overrides (None = flag not given)."""
    return load_config(config, overrides=overrides)


def not_available(stage: str) -> None:
    """Fail clearly for a stage that is not built yet."""
    raise StageNotAvailable(f"`aurora {stage}` is not available yet in this version of Aurora")


UniverseOption = Annotated[
    Path | None,
    typer.Option(
        "--universe",
        help="Universe file (default: configured, else data/universe/top300.txt, "
        "else the built-in 130 names).",
    ),
]


StartOption = Annotated[
    str | None,
    typer.Option("--start", help="First NYSE session to fetch, YYYY-MM-DD (default: "
                 "fetch.history_years back)."),
]
EndOption = Annotated[
    str | None,
    typer.Option("--end", help="Last NYSE session to fetch, YYYY-MM-DD, inclusive (default: "
                 "the last completed session)."),
]


def parse_date_flag(value: str | None, flag: str) -> dt.date | None:
    """A `YYYY-MM-DD` flag value as a date (None when the flag was not given)."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{flag} {value!r}: expected a date as YYYY-MM-DD") from None
