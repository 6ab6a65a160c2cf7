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

            result = build_features(store, cfg, progress=progress)
        out = console()
        meta = result.meta
        out.print(f"built {meta['feature_count']} features "
                  f"({', '.join(f'{k} {v}' for k, v in meta['feature_types'].items())})")
        out.print(f"symbols {result.symbols}, rows {result.rows}, "
                  f"dates {result.date_range[0]} .. {result.date_range[1]}")
        passed = sum(r.passed for r in result.gates.results)
        out.print(f"gates: {passed}/{len(result.gates.results)} passed "
                  f"({', '.join(sorted({r.name for r in result.gates.results}))})")
        if meta["unknown_sector_symbols"]:
            out.print(f"sector unknown for: {', '.join(meta['unknown_sector_symbols'])}")
        if meta["turnover_fallback_rows"]:
            out.print(f"turnover fallback (no shares known) on "
                      f"{sum(meta['turnover_fallback_rows'].values())} rows of "
                      f"{len(meta['turnover_fallback_rows'])} symbols")
        out.print(f"version {result.version} in {result.seconds:.1f}s")
