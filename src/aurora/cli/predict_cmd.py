"""`aurora predict`, `aurora evaluate`."""

from __future__ import annotations

import typer

from aurora.cli.common import not_available


def register(app: typer.Typer) -> None:
    @app.command("predict")
    def predict() -> None:
        """Train point-in-time and rank the universe for a decision date."""
        not_available("predict")

    @app.command("evaluate")
    def evaluate() -> None:
        """Purged walk-forward evaluation of the model and the baseline."""
        not_available("evaluate")
