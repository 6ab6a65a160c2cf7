"""`aurora build`: the 45-feature panel from the stored prices (thin over the library)."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from aurora.cli.common import ConfigOption, DataDirOption, console, make_config
from aurora.store import Store


def register(app: typer.Typer) -> None:
    @app.command("build")
    def build(data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
        """Build the 45-feature panel from the stored prices; publish it if every gate passes."""
        from aurora.features.builder import build_features
        from aurora.ops.runner import run_context

        cfg = make_config(config, data_dir=data_dir)
        store = Store(cfg.data_dir)
        err = console(stderr=True)
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      console=err, transient=True) as bar:
            tasks: dict[str, int] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=max(total, 1))
                bar.update(tasks[stage], completed=done, total=max(total, 1))

            with run_context(store, cfg, "build") as run, run.stage("build"):
                result = build_features(store, cfg, progress=progress)
                run.add(rows=result.rows, symbols=result.symbols)
                run.record_quality("feature gates", result.gates.passed,
                                   [f"{g.name}: {g.message}" for g in result.gates.failures])
        out = console()
        for line in result.summary_lines():
            out.print(line)
