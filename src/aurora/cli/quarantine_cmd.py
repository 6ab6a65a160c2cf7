"""`aurora quarantine list` and `aurora quarantine release SYMBOL` (thin over
`aurora.quarantine`).

`list` only reads (audited, not put in the run history) and prints the record of `latest`
(`--json` for the document itself); `release` publishes one version without the symbol in
quarantine, recorded like every command that writes, and prints what it did.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from aurora.cli.common import ConfigOption, DataDirOption, command_run, make_config, print_lines
from aurora.quarantine import list_quarantine, release_symbol

ReasonOption = Annotated[
    str,
    typer.Option("--reason", help="Why the bars are right after all (kept in the record)."),
]


def register(app: typer.Typer) -> None:
    quarantine_app = typer.Typer(
        help="Symbols the fetch quarantined for defective bars: list them, release one.",
        no_args_is_help=True)
    app.add_typer(quarantine_app, name="quarantine")

    @quarantine_app.command("list")
    def list_(
        ctx: typer.Context,
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
    ) -> None:
        """List the quarantined symbols of the latest version (and the releases)."""
        cfg = make_config(config, data_dir=data_dir)
        with command_run(ctx, "quarantine", cfg, config_file=config, history=False) as run:
            listing = list_quarantine(run.store)
        if as_json:
            print_lines([json.dumps(listing.to_json(), indent=2)])
        else:
            print_lines(listing.summary_lines())

    @quarantine_app.command("release")
    def release(
        ctx: typer.Context,
        symbol: Annotated[str, typer.Argument(help="The quarantined symbol to release.")],
        reason: ReasonOption = "",
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
    ) -> None:
        """Release a quarantined symbol: its problems are accepted, its history re-read."""
        cfg = make_config(config, data_dir=data_dir)
        with command_run(ctx, "quarantine", cfg, config_file=config) as run, \
                run.stage("release"):
            result = release_symbol(run.store, symbol, reason=reason)
        print_lines(result.summary_lines())
