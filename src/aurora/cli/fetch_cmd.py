"""`aurora fetch`, `aurora import`."""

from __future__ import annotations

import typer

from aurora.cli.common import not_available


def register(app: typer.Typer) -> None:
    @app.command("fetch")
    def fetch() -> None:
        """Fetch daily bars from Alpaca into the validated, versioned price store."""
        not_available("fetch")

    @app.command("import")
    def import_() -> None:
        """Import reference data: `aurora import sector-map FILE` or `fundamentals FILE`."""
        not_available("import")
