"""`aurora build`."""

from __future__ import annotations

import typer

from aurora.cli.common import not_available


def register(app: typer.Typer) -> None:
    @app.command("build")
    def build() -> None:
        """Build the 45-feature panel from the stored prices."""
        not_available("build")
