"""Operating Aurora: run history, metrics, alerts, backups, audit log and orchestration.

Modules (each with one job):
- `runner`: `run_context` records one command's stages, counters and outcome;
- `history`: the SQLite run history and alert store (`data/aurora.db`, 0600);
- `metrics`: Prometheus textfile (`data/metrics/aurora.prom`);
- `alerts`: alert rules (pure functions) and webhook delivery with retries;
- `freshness`: latest stored session vs the NYSE calendar and the daily deadline;
- `backup`: content-addressed backups over fsspec, verified restore, drill, prune;
- `audit`: append-only JSON-lines audit log of every command (0600);
- `pipeline`: `run_pipeline` / `run_demo` orchestration;
- `redact`: keep secret values out of every message, file and URL we show.
"""
