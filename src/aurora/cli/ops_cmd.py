"""`aurora run`, `status`, `backup`, `restore`, `rollback`, `drill`, `prune`.

Thin over `aurora.ops`: each command loads the configuration, calls the library inside its
`command_run` (run history, metrics, alerts, audit), and prints the library's summary lines.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from aurora.cli.common import (
    ConfigOption,
    DataDirOption,
    EndOption,
    ProgressOption,
    SchedulerOption,
    StartOption,
    UniverseOption,
    command_run,
    console,
    make_config,
    parse_date_flag,
    path_flag,
    print_lines,
)
from aurora.cli.fetch_cmd import NewHistoryOption
from aurora.cli.progress import progress_bars
from aurora.config import AuroraConfig
from aurora.errors import DataValidationError
from aurora.ops.backup import backup_store, parse_storage_options, restore_version
from aurora.ops.history import History
from aurora.ops.retention import prune as run_prune
from aurora.ops.rollback import rollback
from aurora.ops.status import StatusReport, collect_status

StorageOptions = Annotated[
    list[str] | None,
    typer.Option("--storage-option", "-o", metavar="KEY=VALUE",
                 help="fsspec storage option, repeatable (e.g. endpoint_url=http://127.0.0.1:9000"
                      " for an S3-compatible server). Prefer AWS_* environment variables for "
                      "credentials."),
]


def _key(cfg: AuroraConfig) -> str | None:
    return cfg.ops.backup_key.get_secret_value() if cfg.ops.backup_key else None


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
    history_line = report.history_line()
    out: list[Table | Text] = [
        Text(history_line, style="red") if history_line
        else runs if report.runs else Text("no runs recorded yet")]
    if report.runs:
        last = report.runs[0]
        stages = ", ".join(f"{s.name} {s.seconds:.1f}s" for s in last.stages) or "none"
        peak = f"{last.peak_rss_bytes / 2**20:.0f} MiB" if last.peak_rss_bytes else "?"
        universe = (f"; universe {last.universe_symbols} symbols from {last.universe_source}"
                    if last.universe_source else "")
        out.append(Text(f"last run: {last.command}: stages {stages}; peak memory {peak}"
                        f"{universe}"))
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
    elif history_line:
        out.append(Text("open alerts unknown (the run history is unavailable)", style="red"))
    else:
        out.append(Text("no open alerts", style="green"))
    return out


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        ctx: typer.Context,
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
        universe: UniverseOption = None,
        start: StartOption = None,
        end: EndOption = None,
        evaluate: Annotated[bool, typer.Option(
            "--evaluate", help="Also run the walk-forward evaluation.")] = False,
        new_history: NewHistoryOption = False,
        scheduler: SchedulerOption = None,
        progress: ProgressOption = True,
    ) -> None:
        """Fetch, build and predict, each stage gated by the previous one's validation
        (with --scheduler, a full build and the evaluation run on the Dask cluster)."""
        from aurora.ops.pipeline import run_pipeline  # deferred: start-up time (cli/main.py)

        cfg = make_config(config, data_dir=data_dir, universe=universe,
                          **{"fetch.new_history": True if new_history else None,
                             "compute.scheduler": scheduler})
        with command_run(ctx, "run", cfg, config_file=config) as rec, \
                progress_bars(progress) as bars:
            result = run_pipeline(cfg, start=parse_date_flag(start, "--start"),
                                  end=parse_date_flag(end, "--end"), evaluate=evaluate,
                                  progress=bars, run=rec)
        result.alerts = rec.alerts
        print_lines(result.summary_lines())

    @app.command("status")
    def status(
        ctx: typer.Context,
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
        limit: Annotated[int, typer.Option("--limit", help="How many recent runs.")] = 10,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
        ack: Annotated[int | None, typer.Option("--ack", metavar="ID",
                                                help="Acknowledge open alert ID.")] = None,
    ) -> None:
        """Recent runs, data freshness and open alerts."""
        cfg = make_config(config, data_dir=data_dir)
        with command_run(ctx, "status", cfg, config_file=config, history=False) as rec:
            if ack is not None:
                closed = History(rec.store.root).close_alerts(alert_id=ack)
                console().print(f"alert {ack}: {'acknowledged' if closed else 'not open'}",
                                markup=False)
            report = collect_status(rec.store, cfg, limit=limit)
        if as_json:
            print(json.dumps(report.to_dict(), indent=2, default=str))
            return
        out = console()
        for renderable in render_status(report):
            out.print(renderable)

    @app.command("backup")
    def backup(
        ctx: typer.Context,
        to: Annotated[str, typer.Option("--to", help="Local path or fsspec URL (s3://...).")],
        storage_option: StorageOptions = None,
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
    ) -> None:
        """Copy the versioned store to a local path or fsspec URL, with sha256 checksums."""
        cfg = make_config(config, data_dir=data_dir)
        options = parse_storage_options(storage_option)
        with command_run(ctx, "backup", cfg, config_file=config) as rec, rec.stage("backup"):
            report = backup_store(rec.store, to, key=_key(cfg), storage_options=options)
            rec.add(rows=report.blobs_uploaded)
        print_lines(report.summary_lines())

    @app.command("restore")
    def restore(
        ctx: typer.Context,
        source: Annotated[str, typer.Option("--from", help="Backup path or fsspec URL.")],
        version: Annotated[str | None, typer.Option(
            "--version", help="Version to restore (default: the backup's latest).")] = None,
        storage_option: StorageOptions = None,
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
    ) -> None:
        """Restore a version from a backup, verify every checksum, point latest to it."""
        cfg = make_config(config, data_dir=data_dir)
        options = parse_storage_options(storage_option)
        with command_run(ctx, "restore", cfg, config_file=config) as rec, rec.stage("restore"):
            report = restore_version(rec.store, source, version=version, key=_key(cfg),
                                     storage_options=options)
            rec.add(rows=len(report.files_downloaded))
        print_lines(report.summary_lines())

    @app.command("rollback")
    def rollback_cmd(
        ctx: typer.Context,
        to: Annotated[str | None, typer.Option(
            "--to", help="Version to make latest (default: the parent of the current one).")
        ] = None,
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
    ) -> None:
        """Point latest back at an earlier version of the local store, after verifying it."""
        cfg = make_config(config, data_dir=data_dir)
        with command_run(ctx, "rollback", cfg, config_file=config) as rec, rec.stage("rollback"):
            report = rollback(rec.store, to)
            rec.add(rows=report.files_verified)
        print_lines(report.summary_lines())

    @app.command("drill")
    def drill(
        ctx: typer.Context,
        source: Annotated[str, typer.Option("--from", help="Backup path or fsspec URL.")],
        storage_option: StorageOptions = None,
        scratch: Annotated[str | None, typer.Option(
            "--scratch", help="Scratch directory (default: a new temporary one).")] = None,
        keep_scratch: Annotated[bool, typer.Option(
            "--keep-scratch", help="Leave the scratch directory for inspection.")] = False,
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
    ) -> None:
        """Recovery test: restore the latest backup to scratch, verify, rebuild features."""
        from aurora.ops.recovery import drill as run_drill  # deferred: start-up (cli/main.py)

        cfg = make_config(config, data_dir=data_dir)
        options = parse_storage_options(storage_option)
        with command_run(ctx, "drill", cfg, config_file=config) as rec:
            with rec.stage("drill"):
                report = run_drill(source, cfg, key=_key(cfg), storage_options=options,
                                   scratch=path_flag(scratch, "--scratch"),
                                   keep_scratch=keep_scratch)
            rec.record_quality("drill", report.ok, report.problems)
            print_lines(report.summary_lines())
            if not report.ok:
                raise DataValidationError(
                    f"drill failed: {report.problems[0] if report.problems else 'see above'}")

    @app.command("prune")
    def prune(
        ctx: typer.Context,
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
        days = keep_days if keep_days is not None else (None if keep else cfg.ops.keep_days)
        with command_run(ctx, "prune", cfg, config_file=config) as rec, rec.stage("prune"):
            report = run_prune(rec.store, keep_versions=cfg.ops.keep_versions, keep_days=days,
                               dry_run=dry_run)
        print_lines(report.summary_lines())
