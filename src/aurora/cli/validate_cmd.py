"""`aurora validate`."""

from __future__ import annotations

import typer

from aurora.cli.common import not_available


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate() -> None:
        """Validate the stored data and checksums; exit non-zero on failure."""
        not_available("validate")
