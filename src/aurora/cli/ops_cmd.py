"""`aurora run`, `demo`, `status`, `backup`, `restore`, `drill`, `prune`.

Thin over `aurora.ops`: each command loads the configuration, calls the library inside a
`run_context` (run history, metrics, alerts, audit), and prints the library's summary lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from aurora.cli.common import (
    ConfigOption,
    DataDirOption,
    EndOption,
    StartOption,
    UniverseOption,
    console,
    make_config,
    parse_date_flag,
)
from aurora.config import AuroraConfig
from aurora.errors import DataValidationError
from aurora.ops.backup import backup_store, parse_storage_options, restore_version
from aurora.ops.history import History
from aurora.ops.recovery import drill as run_drill
from aurora.ops.recovery import prune as run_prune
from aurora.ops.rollback import rollback
from aurora.ops.runner import run_context
from aurora.ops.status import StatusReport, collect_status
from aurora.store import Store

StorageOptions = Annotated[
    list[str] | None,
    typer.Option("--storage-option", "-o", metavar="KEY=VALUE",
                 help="fsspec storage option, repeatable (e.g. endpoint_url=http://127.0.0.1:9000"
                      " for an S3-compatible server). Prefer AWS_* environment variables for "
                      "credentials."),
]


def _key(cfg: AuroraConfig) -> str | None:
    return cfg.ops.backup_key.get_secret_value() if cfg.ops.backup_key else None


def _print_lines(lines: list[str]) -> None:
    out = console()
    for line in lines:
        out.print(line, markup=False)


def render_status(report: StatusReport) -> list[Table | Text]:
    """Renderables for `aurora status`."""
    runs = Table(title="recent runs", title_justify="left")
    for column in ("when (UTC)", "command", "result", "secs", "rows", "syms", "req/retry",
                   "coverage"):
        runs.add_column(column, no_wrap=column == "when (UTC)")
    for r in report.runs:
        result = (Text("ok", style="green") if r.success
                  else Text(f"exit {r.exit_code}", style="red"))
        coverage = f"{r.coverage:.1%}" if r.coverage is not None else ""
        runs.add_row(r.started_at[5:16].replace("T", " "), r.command, result,
                     f"{r.duration_seconds:.1f}", f"{r.rows:,}", str(r.symbols),
                     f"{r.requests}/{r.retries}", coverage)
    out: list[Table | Text] = [runs if report.runs else Text("no runs recorded yet")]
    if report.runs:
        last = report.runs[0]
        stages = ", ".join(f"{s.name} {s.seconds:.1f}s" for s in last.stages) or "none"
        peak = f"{last.peak_rss_bytes / 2**20:.0f} MiB" if last.peak_rss_bytes else "?"
        out.append(Text(f"last run: {last.command}: stages {stages}; peak memory {peak}"))
        if last.error:
            out.append(Text(f"  error: {last.error}", style="red"))
    if report.freshness is not None:
        style = "red" if report.freshness.stale else "green"
        out.append(Text(f"data: {report.freshness.summary()}", style=style))
    elif report.freshness_error:
        out.append(Text(f"data: {report.freshness_error}", style="red"))
    out.append(Text(f"latest version: {report.latest_version or 'none'}"))
    if report.newer_than_latest:
        out.append(Text(
            f"{len(report.newer_than_latest)} published version(s) newer than latest, not"
            f" current: {', '.join(report.newer_than_latest[-3:])} (a run killed while"
            " publishing, or a rollback; `aurora rollback --to ID` makes one current)",
            style="yellow"))
    if report.in_progress:
        state = report.in_progress
        verb = "running" if state["alive"] else "was interrupted in"
        out.append(Text(f"`aurora {state.get('command')}` (pid {state.get('pid')}) {verb} "
                        f"stage {state.get('stage')} since {state.get('started_at')}",
                        style="yellow" if state["alive"] else "red"))
    if report.alerts:
        alerts = Table(title=f"open alerts ({len(report.alerts)})", title_justify="left")
        for column in ("id", "when (UTC)", "severity", "alert", "delivered"):
            alerts.add_column(column)
        for a in report.alerts:
            delivered = {None: "-", True: "yes", False: f"no ({a.delivery_error})"}[a.delivered]
            message = a.message if len(a.message) <= 160 else a.message[:157] + "..."
            alerts.add_row(str(a.id), a.created_at[5:16].replace("T", " "), a.severity,
                           Text(message), Text(delivered))
        out.append(alerts)
    else:
        out.append(Text("no open alerts", style="green"))
    return out


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
        universe: UniverseOption = None,
        start: StartOption = None,
        end: EndOption = None,
        evaluate: Annotated[bool, typer.Option(
            "--evaluate", help="Also run the walk-forward evaluation.")] = False,
        progress: Annotated[bool, typer.Option(
            "--progress/--no-progress", help="Progress bars on stderr.")] = True,
    ) -> None:
        """Fetch, build and predict, each stage gated by the previous one's validation."""
        from aurora.ops.pipeline import run_pipeline

        cfg = make_config(config, data_dir=data_dir, universe=universe)
        result = run_pipeline(
            cfg,
            start=parse_date_flag(start, "--start"),
            end=parse_date_flag(end, "--end"),
            evaluate=evaluate,
            progress=progress,
        )
        _print_lines(result.summary_lines())

    @app.command("demo")
    def demo(
        data_dir: Annotated[Path, typer.Option(
            "--data-dir", help="Where to write (default ./data).")] = Path("data"),
        config: ConfigOption = None,
        years: Annotated[int, typer.Option(
            "--years", min=2, max=10, help="Years of synthetic history.")] = 4,
        progress: Annotated[bool, typer.Option(
            "--progress/--no-progress", help="Progress bars on stderr.")] = True,
    ) -> None:
        """Run the whole pipeline offline against the built-in Alpaca emulator."""
        from aurora.ops.pipeline import run_demo

        cfg = make_config(config, data_dir=data_dir)
        result = run_demo(cfg, years=years, progress=progress)
        _print_lines(result.summary_lines())

    @app.command("status")
    def status(
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
        limit: Annotated[int, typer.Option("--limit", help="How many recent runs.")] = 10,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
        ack: Annotated[int | None, typer.Option("--ack", metavar="ID",
                                                help="Acknowledge open alert ID.")] = None,
    ) -> None:
        """Recent runs, data freshness and open alerts."""
        cfg = make_config(config, data_dir=data_dir)
        store = Store(cfg.data_dir)
        if ack is not None:
            closed = History(store.root).close_alerts(alert_id=ack)
            console().print(f"alert {ack}: {'acknowledged' if closed else 'not open'}",
                            markup=False)
        report = collect_status(store, cfg, limit=limit)
        if as_json:
            print(json.dumps(report.to_dict(), indent=2, default=str))
            return
        out = console()
        for renderable in render_status(report):
            out.print(renderable)

    @app.command("backup")
    def backup(
        to: Annotated[str, typer.Option("--to", help="Local path or fsspec URL (s3://...).")],
        storage_option: StorageOptions = None,
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
    ) -> None:
        """Copy the versioned store to a local path or fsspec URL, with sha256 checksums."""
        cfg = make_config(config, data_dir=data_dir)
        store = Store(cfg.data_dir)
        options = parse_storage_options(storage_option)
        with run_context(store, cfg, "backup") as ctx, ctx.stage("backup"):
            report = backup_store(store, to, key=_key(cfg), storage_options=options)
            ctx.add(rows=report.blobs_uploaded)
        _print_lines(report.summary_lines())

    @app.command("restore")
    def restore(
        source: Annotated[str, typer.Option("--from", help="Backup path or fsspec URL.")],
        version: Annotated[str | None, typer.Option(
            "--version", help="Version to restore (default: the backup's latest).")] = None,
        storage_option: StorageOptions = None,
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
    ) -> None:
        """Restore a version from a backup, verify every checksum, point latest to it."""
        cfg = make_config(config, data_dir=data_dir)
        store = Store(cfg.data_dir)
        options = parse_storage_options(storage_option)
        with run_context(store, cfg, "restore") as ctx, ctx.stage("restore"):
            report = restore_version(store, source, version=version, key=_key(cfg),
                                     storage_options=options)
            ctx.add(rows=len(report.files_downloaded))
        _print_lines(report.summary_lines())

    @app.command("rollback")
    def rollback_cmd(
        to: Annotated[str | None, typer.Option(
            "--to", help="Version to make latest (default: the parent of the current one).")
        ] = None,
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
    ) -> None:
        """Point latest back at an earlier version of the local store, after verifying it."""
        cfg = make_config(config, data_dir=data_dir)
        store = Store(cfg.data_dir)
        with run_context(store, cfg, "rollback") as ctx, ctx.stage("rollback"):
            report = rollback(store, to)
            ctx.add(rows=report.files_verified)
        _print_lines(report.summary_lines())

    @app.command("drill")
    def drill(
        source: Annotated[str, typer.Option("--from", help="Backup path or fsspec URL.")],
        storage_option: StorageOptions = None,
        scratch: Annotated[Path | None, typer.Option(
            "--scratch", help="Scratch directory (default: a new temporary one).")] = None,
        keep_scratch: Annotated[bool, typer.Option(
            "--keep-scratch", help="Leave the scratch directory for inspection.")] = False,
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
    ) -> None:
        """Recovery test: restore the latest backup to scratch, verify, rebuild features."""
        cfg = make_config(config, data_dir=data_dir)
        store = Store(cfg.data_dir)
        options = parse_storage_options(storage_option)
        with run_context(store, cfg, "drill") as ctx:
            with ctx.stage("drill"):
                report = run_drill(source, cfg, key=_key(cfg), storage_options=options,
                                   scratch=scratch, keep_scratch=keep_scratch)
            ctx.record_quality("drill", report.ok, report.problems)
            _print_lines(report.summary_lines())
            if not report.ok:
                raise DataValidationError(
                    f"drill failed: {report.problems[0] if report.problems else 'see above'}")

    @app.command("prune")
    def prune(
        keep: Annotated[int | None, typer.Option(
            "--keep", help="Keep the newest N versions (default ops.keep_versions).")] = None,
        keep_days: Annotated[int | None, typer.Option(
            "--keep-days", help="Keep versions newer than D days (default ops.keep_days).")
        ] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list.")] = False,
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
    ) -> None:
        """Delete old versions, keeping the last N (or D days); never the one latest uses."""
        cfg = make_config(config, data_dir=data_dir, **{"ops.keep_versions": keep,
                                                         "ops.keep_days": keep_days})
        store = Store(cfg.data_dir)
        days = keep_days if keep_days is not None else (None if keep else cfg.ops.keep_days)
        with run_context(store, cfg, "prune") as ctx, ctx.stage("prune"):
            report = run_prune(store, keep_versions=cfg.ops.keep_versions, keep_days=days,
                               dry_run=dry_run)
        _print_lines(report.summary_lines())
