"""`aurora validate`: checksums and content checks of the latest store version.

Thin over `aurora.validation.validate_store`: writes the machine-readable report (atomic
JSON), prints a short table, exits 0 when no check failed with severity "error", else
raises DataValidationError (exit code 5) naming the first error.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from aurora.atomic import atomic_write_json
from aurora.cli.common import ConfigOption, DataDirOption, command_run, console, make_config
from aurora.errors import DataValidationError
from aurora.validation import ValidationReport, validate_store

REPORT_NAME = "validation-report.json"
SHOWN_FINDINGS = 10

ReportOption = Annotated[
    Path | None,
    typer.Option("--report", help=f"Where to write the JSON report (default DATA/state/"
                                  f"{REPORT_NAME})."),
]


def render(report: ValidationReport) -> Table:
    """A rich table: one row per check with findings, plus the first few error lines."""
    table = Table(title="aurora validate", title_justify="left")
    for name, justify in (("check", "left"), ("severity", "left"), ("findings", "right"),
                          ("count", "right"), ("example", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    examples: dict[str, str] = {}
    for f in sorted(report.findings, key=lambda f: (f.check, f.symbol or "")):
        examples.setdefault(f.check, f"{f.symbol}: {f.message}" if f.symbol else f.message)
    for row in report.by_check():
        if row["findings"]:
            style = "red" if row["severity"] == "error" else "yellow"
            table.add_row(row["check"], Text(row["severity"], style=style),
                          str(row["findings"]), str(row["count"]), Text(examples[row["check"]]))
    return table


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate(
        ctx: typer.Context,
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
        report: ReportOption = None,
    ) -> None:
        """Validate the stored data and checksums; exit non-zero (5) on any error."""
        cfg = make_config(config, data_dir=data_dir)
        with command_run(ctx, "validate", cfg, config_file=config) as run:
            store = run.store
            with run.stage("validate"), \
                    console(stderr=True).status(f"validating {store.latest} ..."):
                result = validate_store(store, cfg)
            path = report or store.state_dir / REPORT_NAME
            payload = {"generated_at": dt.datetime.now(dt.UTC).isoformat(), **result.to_dict()}
            atomic_write_json(path, payload)
            run.record_quality("store validation", result.ok, [f.line() for f in result.errors],
                               [f.line() for f in result.warnings][:50])
            _show(result, path)
            if not result.ok:
                raise DataValidationError(
                    f"validation failed with {len(result.errors)} error(s); first: "
                    f"{result.errors[0].line()} (report: {path})"
                )


def _show(result: ValidationReport, path: Path) -> None:
    """The table, the first errors and the one-line verdict on stdout."""
    out = console()
    if result.findings:
        out.print(render(result))
    for f in result.errors[:SHOWN_FINDINGS]:
        out.print(Text(f.line(), style="red"))
    if len(result.errors) > SHOWN_FINDINGS:
        out.print(f"... {len(result.errors) - SHOWN_FINDINGS} more error(s) in {path}",
                  markup=False)
    out.print(result.summary_lines()[0], markup=False)
    out.print(f"report: {path}", markup=False)
