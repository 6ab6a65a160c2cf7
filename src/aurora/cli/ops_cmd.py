"""`aurora run`, `demo`, `status`, `backup`, `restore`."""

from __future__ import annotations

import typer

from aurora.cli.common import not_available


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run() -> None:
        """Fetch, build and predict, each stage gated by the previous one's validation."""
        not_available("run")

    @app.command("demo")
    def demo() -> None:
        """Run the whole pipeline offline against the built-in Alpaca emulator."""
        not_available("demo")

    @app.command("status")
    def status() -> None:
        """Recent runs, data freshness and open alerts."""
        not_available("status")

    @app.command("backup")
    def backup() -> None:
        """Copy the versioned store to a local path or fsspec URL."""
        not_available("backup")

    @app.command("restore")
    def restore() -> None:
        """Restore a version from a backup and verify every checksum."""
        not_available("restore")
