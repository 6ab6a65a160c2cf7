"""`aurora validate`: checksums and content checks of the latest store version.

Thin over `aurora.validation.validate_store`: writes the machine-readable report (atomic
JSON), prints a short table, exits 0 when no check failed with severity "error", else
raises DataValidationError (exit code 5) naming the first error. With `--against PATH` it
also reconciles the stored prices with a second source read like `aurora import bars`
(`aurora.validation.against`): a second report section (`against` in the JSON), the first
disagreements printed, exit 5 when the share of disagreeing bars exceeds `--max-share`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from aurora.atomic import atomic_write_json
from aurora.cli.common import (
    ConfigOption,
    DataDirOption,
    command_run,
    console,
    make_config,
    path_flag,
    print_lines,
)
from aurora.errors import ConfigError, DataValidationError, StoreError
from aurora.ops.runner import RunContext
from aurora.store import Store
from aurora.validation import ValidationReport, validate_store
from aurora.validation.against import (
    COMPARABLE,
    DEFAULT_COLUMNS,
    DEFAULT_MAX_SHARE,
    DEFAULT_TOLERANCE,
    Reconciliation,
    reconcile_store,
)

REPORT_NAME = "validation-report.json"
SHOWN_FINDINGS = 10

ReportOption = Annotated[
    Path | None,
    typer.Option("--report", help=f"Where to write the JSON report (default DATA/state/"
                                  f"{REPORT_NAME})."),
]


AgainstOption = Annotated[str | None, typer.Option(
    "--against", help="Reconcile the stored prices with a second source: a CSV or Parquet "
    "file, or a directory of them, read like `aurora import bars`.")]
ToleranceOption = Annotated[float | None, typer.Option(
    "--tolerance", help=f"With --against: relative difference beyond which two values "
    f"disagree (default {DEFAULT_TOLERANCE:g}).")]
MaxShareOption = Annotated[float | None, typer.Option(
    "--max-share", help=f"With --against: the largest share of compared bars that may "
    f"disagree before the command fails (default {DEFAULT_MAX_SHARE:g}).")]
ColumnsOption = Annotated[str | None, typer.Option(
    "--columns", help=f"With --against: comma-separated columns to compare (default "
    f"{','.join(DEFAULT_COLUMNS)}).")]


def _against(against: str | None, tolerance: float | None, max_share: float | None,
             columns: str | None) -> dict[str, Any] | None:
    """The reconciliation settings from the flags (None without --against); ConfigError
    for a flag without --against or a value out of range."""
    if against is None:
        if (tolerance, max_share, columns) != (None, None, None):
            raise ConfigError("--tolerance, --max-share and --columns need --against PATH")
        return None
    tol = DEFAULT_TOLERANCE if tolerance is None else tolerance
    share = DEFAULT_MAX_SHARE if max_share is None else max_share
    if not tol >= 0:
        raise ConfigError(f"--tolerance {tol}: expected a number >= 0")
    if not 0 <= share <= 1:
        raise ConfigError(f"--max-share {share}: expected a number within 0..1")
    names = tuple(c.strip().lower() for c in (columns or ",".join(DEFAULT_COLUMNS)).split(",")
                  if c.strip())
    unknown = [c for c in names if c not in COMPARABLE]
    if unknown or not names:
        raise ConfigError(f"--columns {columns!r}: expected some of {', '.join(COMPARABLE)}")
    return {"path": path_flag(against, "--against"), "rel_tolerance": tol,
            "max_share": share, "columns": names}


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
        against: AgainstOption = None,
        tolerance: ToleranceOption = None,
        max_share: MaxShareOption = None,
        columns: ColumnsOption = None,
    ) -> None:
        """Validate the stored data and checksums; exit non-zero (5) on any error.

        With --against PATH, also reconcile the stored prices with a second
        source: exit 5 when more than --max-share of the compared bars disagree."""
        cfg = make_config(config, data_dir=data_dir)
        settings = _against(against, tolerance, max_share, columns)
        with command_run(ctx, "validate", cfg, config_file=config) as run:
            store = run.store
            with run.stage("validate"), \
                    console(stderr=True).status(f"validating {store.latest} ..."):
                result = validate_store(store, cfg)
            recon, recon_error = _reconcile(run, store, settings)
            path = report or store.state_dir / REPORT_NAME
            payload = {"generated_at": dt.datetime.now(dt.UTC).isoformat(), **result.to_dict()}
            if settings is not None:
                payload["against"] = (recon.to_dict() if recon is not None else
                                      {"source": str(settings["path"]), "error": recon_error})
            atomic_write_json(path, payload)
            run.record_quality("store validation", result.ok, [f.line() for f in result.errors],
                               [f.line() for f in result.warnings][:50])
            _show(result, path)
            if recon is not None:
                print_lines(recon.summary_lines())
            if not result.ok:
                raise DataValidationError(
                    f"validation failed with {len(result.errors)} error(s); first: "
                    f"{result.errors[0].line()} (report: {path})"
                )
            if recon_error is not None:
                raise StoreError(recon_error)
            if recon is not None and not recon.ok:
                raise DataValidationError(f"{recon.failure()} (report: {path})")


def _reconcile(run: RunContext, store: Store, settings: dict[str, Any] | None
               ) -> tuple[Reconciliation | None, str | None]:
    """The reconciliation with `--against` (None without it), or the StoreError that kept
    the stored prices from being read (missing or corrupt prices, which the
    validation reports too)."""
    if settings is None:
        return None, None
    from aurora.vendorfiles import read_bars  # deferred: start-up time (cli/main.py)

    with run.stage("reconcile"):
        other = read_bars(settings["path"])
        for file in other.files:
            run.note_read(file)
        try:
            recon = reconcile_store(store, other.bars, source=str(other.source),
                                    rel_tolerance=settings["rel_tolerance"],
                                    max_share=settings["max_share"],
                                    columns=settings["columns"])
        except StoreError as exc:
            return None, str(exc)
    run.record_quality("reconciliation", recon.ok, [recon.failure() or ""] if not recon.ok
                       else [], recon.lines(50))
    return recon, None


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
