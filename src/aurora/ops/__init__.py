"""Operating Aurora: run history, metrics, alerts, backups, audit log and orchestration.

Modules (each with one job):
- `runner`: `run_context`, the one place a command's run is recorded (history, alerts,
  metrics, audit line);
- `history`: the SQLite run history and alert store (`data/aurora.db`, 0600, migrated with
  `PRAGMA user_version`);
- `metrics`: Prometheus textfile (`data/metrics/aurora.prom`);
- `alerts`: alert rules (pure functions) and webhook delivery with retries;
- `freshness`: latest stored session vs the NYSE calendar and the daily deadline;
- `audit`: append-only JSON-lines audit log of every command (0600);
- `backup`: content-addressed backups over fsspec and verified restores;
- `recovery`: recovery drills; `retention`: pruning old versions; `rollback`;
- `status`: what `aurora status` shows, as data;
- `pipeline`: `run_pipeline` orchestration (fetch -> validate -> build -> predict).
"""
