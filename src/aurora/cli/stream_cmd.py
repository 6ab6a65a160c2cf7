"""`aurora stream` (a thin wrapper over `aurora.stream.day`)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Annotated

import typer

from aurora.cli.common import (
    ConfigOption,
    DataDirOption,
    UniverseOption,
    command_run,
    make_config,
    parse_date_flag,
    print_lines,
)
from aurora.universe import resolve_universe


def register(app: typer.Typer) -> None:
    @app.command("stream")
    def stream(
        ctx: typer.Context,
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
        universe: UniverseOption = None,
        day: Annotated[str | None, typer.Option(
            "--day", help="The session streamed (YYYY-MM-DD; default today in New "
            "York): the journal and the published part are that day's.")] = None,
        preclose: Annotated[bool, typer.Option(
            "--preclose/--no-preclose", help="At stream.cut_time (15:45 New York), rank "
            "the universe for today's close into predictions-preclose.json.")] = True,
    ) -> None:
        """Stream today's minute bars from Alpaca's market-data WebSocket until
        stream.end_time (16:05 New York), then publish them to data/intraday/1Min.

        Survives drops, silent sockets and restarts (an fsynced journal); fills missed
        minutes over REST; alerts through the run's channel. Halts (trading statuses)
        are reported, not alerted; the minutes are compared with the streamed daily
        bars. Endpoint: stream.url or AURORA_STREAM_URL ({feed} is fetch.feed); keys as
        for `aurora fetch`.
        """
        from aurora.ops.alerts import Alert
        from aurora.stream.day import run_stream_day, stream_day

        cfg = make_config(config, data_dir=data_dir, universe=universe)
        chosen_day = parse_date_flag(day, "--day") or stream_day()
        with command_run(ctx, "stream", cfg, config_file=config) as run:
            chosen = resolve_universe(cfg, run.store)
            run.use_universe(chosen)

            posting: list[threading.Thread] = []

            def alert(rule: str, message: str) -> None:
                # each event its own key (one alert per silent spell, per unfilled gap),
                # posted in a thread: the stream is not held up by a slow webhook
                when = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
                raised = Alert(rule, "warning", message, key=f"{rule}:{chosen_day}:{when}",
                               details={"day": chosen_day.isoformat(), "at": when})
                thread = threading.Thread(target=run.alert_now, args=(raised,),
                                          name="alert", daemon=True)
                thread.start()
                posting.append(thread)

            with run.stage("stream"):
                report = run_stream_day(cfg, universe=chosen, day=chosen_day,
                                        on_alert=alert, preclose=preclose)
                for thread in posting:
                    thread.join(60)
            run.add(rows=report.bars, symbols=report.symbols)
            run.record_quality("stream validation", True,
                               warnings=[*report.validation.warnings(),
                                         *report.daily_findings])
        print_lines(report.summary_lines())
