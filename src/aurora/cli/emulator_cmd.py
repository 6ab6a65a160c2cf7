"""`aurora emulator`."""

from __future__ import annotations

import typer

from aurora.cli.common import not_available


def register(app: typer.Typer) -> None:
    @app.command("emulator")
    def emulator() -> None:
        """Serve an Alpaca-compatible market-data API on 127.0.0.1 (test and demo bed)."""
        not_available("emulator")
