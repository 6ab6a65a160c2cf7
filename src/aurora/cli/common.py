"""Shared CLI plumbing: options, configuration loading, the one run context of a command.

Every command that touches a data directory runs inside `command_run`, which opens
`aurora.ops.runner.run_context` (run history, alerts, metrics and one audit line) with the
command line as typed and the input files the command reads (the configuration file, the
universe file, an imported file). Library calls happen inside it; the CLI only prints the
summary lines the library returns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from aurora.config import AuroraConfig, find_config_file, load_config
from aurora.errors import ConfigError
from aurora.ops.runner import RunContext, run_context
from aurora.store import Store

DataDirOption = Annotated[
    str | None,
    typer.Option("--data-dir", help="Data directory (default ./data, env AURORA_DATA_DIR)."),
]
ConfigOption = Annotated[
    str | None,
    typer.Option(
        "--config", help="TOML configuration file (default ./aurora.toml, env AURORA_CONFIG)."
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option("--scheduler", help="A Dask scheduler, tcp://HOST:PORT: run the stage's "
                 "tasks on its workers (default: AURORA_SCHEDULER, compute.scheduler in "
                 "aurora.toml, else in this process)."),
]
UniverseOption = Annotated[
    str | None,
    typer.Option(
        "--universe",
        help="Universe file, any readable path: one ticker a line, or a dated CSV "
        "symbol,start,end (default: configured, else the universe recorded in the store "
        "version read, else the built-in 130 names).",
    ),
]
ProgressOption = Annotated[
    bool, typer.Option("--progress/--no-progress", help="Progress bars on stderr.")
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


def console(stderr: bool = False) -> Console:
    """A rich console for human-readable output (stderr for progress and errors)."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def print_lines(lines: Iterable[str]) -> None:
    """Print a library's summary lines on stdout, as plain text."""
    out = console()
    for line in lines:
        out.print(line, markup=False)


def make_config(config: Path | None, **overrides: Any) -> AuroraConfig:
    """Load configuration with CLI flags as dotted-key overrides (None = flag not given).

    Path flags arrive as text: an empty one (`--data-dir ""`) is refused by the
    configuration like an empty environment variable, not read as the current directory.
    """
    if config is not None and not str(config).strip():
        raise ConfigError("flag --config: the path is empty")
    return load_config(Path(config) if config is not None else None, overrides=overrides)


def command_line(ctx: typer.Context) -> list[str]:
    """The command line as typed (`main` passes it as the root context's `obj`)."""
    obj = ctx.find_root().obj
    return list(obj) if isinstance(obj, list | tuple) else []


@contextmanager
def command_run(ctx: typer.Context, command: str, cfg: AuroraConfig, *,
                config_file: str | Path | None = None, reads: Iterable[Path] = (),
                history: bool = True) -> Iterator[RunContext]:
    """The run context of one CLI command (see the module docstring).

    `ctx` is the command's typer context (for the command line); `config_file` is the
    `--config` flag: the file actually read and the configured universe file are noted as
    inputs, with `reads`. `history=False` for read-only commands.
    """
    argv = command_line(ctx)
    with run_context(Store(cfg.data_dir), cfg, command, argv=argv, history=history) as run:
        given = Path(config_file) if config_file is not None else None
        for path in (find_config_file(given), cfg.universe, *reads):
            if path is not None:
                run.note_read(path)
        yield run


def path_flag(value: str | None, flag: str) -> Path | None:
    """A path flag's value (None when not given); ConfigError for an empty one, which
    would otherwise silently mean the current directory."""
    if value is None:
        return None
    if not value.strip():
        raise ConfigError(f"flag {flag}: the path is empty")
    return Path(value)


def parse_date_flag(value: str | None, flag: str) -> dt.date | None:
    """A `YYYY-MM-DD` flag value as a date (None when the flag was not given)."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{flag} {value!r}: expected a date as YYYY-MM-DD") from None
