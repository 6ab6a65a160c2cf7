"""`aurora predict`, `aurora evaluate` (thin over `aurora.predict`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from aurora.cli.common import ConfigOption, DataDirOption, console, make_config, parse_date_flag
from aurora.store import Store

DecisionDateOption = Annotated[
    str | None,
    typer.Option("--decision-date", help="Session to rank for, YYYY-MM-DD (default: the "
                 "next NYSE session after the last stored one)."),
]
TOP = 10


@contextmanager
def _fold_progress() -> Iterator[Any]:
    """A progress callback for walk-forward folds; the bar appears on the first fold only,
    so an early one-line error is not preceded by an empty bar."""
    bar = Progress(TextColumn("walk-forward"), BarColumn(),
                   TextColumn("{task.completed}/{task.total} folds"), TimeElapsedColumn(),
                   console=console(stderr=True), transient=True)
    task: list[Any] = []

    def update(done: int, total: int) -> None:
        if not task:
            bar.start()
            task.append(bar.add_task("folds", total=total))
        bar.update(task[0], completed=done, total=total)

    try:
        yield update
    finally:
        if task:
            bar.stop()


def _print_evaluation(summary: dict[str, Any]) -> None:
    from aurora.predict.evaluate import summary_lines, table_lines

    out = console()
    if summary.get("status") != "ok":
        out.print(f"evaluation: {summary.get('message')}")
        return
    for line in table_lines(summary) + summary_lines(summary)[len(summary["models"]):]:
        out.print(line, markup=False)


def register(app: typer.Typer) -> None:
    @app.command("predict")
    def predict(
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
        decision_date: DecisionDateOption = None,
    ) -> None:
        """Train point-in-time and rank the universe for a decision date."""
        from aurora.ops.runner import run_context
        from aurora.predict import predict as run_predict

        cfg = make_config(config, data_dir=data_dir)
        day = parse_date_flag(decision_date, "--decision-date")
        store = Store(cfg.data_dir)
        with _fold_progress() as progress, run_context(store, cfg, "predict") as run, \
                run.stage("predict"):
            result = run_predict(store, cfg, decision_date=day, progress=progress)
            run.add(symbols=sum(e["score"] is not None for e in result.document["predictions"]))
        doc = result.document
        out = console()
        entries = doc["predictions"]
        scored = [e for e in entries if e["score"] is not None]
        out.print(f"decision date {doc['decision_date']} (features of {doc['feature_date']}), "
                  f"horizon {doc['horizon']} sessions, {doc['model']['name']} trained on "
                  f"{doc['model']['training_rows']:,} rows "
                  f"{doc['model']['training_window']['first_feature_date']} .. "
                  f"{doc['model']['training_window']['last_feature_date']}")
        out.print(f"ranked {len(scored)} of {len(entries)} symbols; top {min(TOP, len(scored))}: "
                  + ", ".join(e["symbol"] for e in scored[:TOP]))
        for e in entries:
            if e["score"] is None:
                out.print(f"not ranked: {e['symbol']}: {e['reason']}")
        _print_evaluation(result.evaluation)
        reused = " (evaluation reused)" if result.evaluation_reused else ""
        out.print(f"wrote predictions.json in version {result.version}{reused}")

    @app.command("evaluate")
    def evaluate(data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
        """Purged walk-forward evaluation of the model and the baseline."""
        from aurora.ops.runner import run_context
        from aurora.predict import evaluate as run_evaluate

        cfg = make_config(config, data_dir=data_dir)
        store = Store(cfg.data_dir)
        with _fold_progress() as progress, run_context(store, cfg, "evaluate") as run, \
                run.stage("evaluate"):
            report = run_evaluate(store, cfg, progress=progress)
        _print_evaluation(report.summary)
        console().print(f"wrote evaluation.json in version {store.current_version()}")
