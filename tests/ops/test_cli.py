import datetime as dt
import json

from ops_helpers import prices_frame, publish

from aurora.cli.main import main
from aurora.ops.history import History
from aurora.store import Store


def test_prune_status_json_and_ack(data_dir, capsys):
    store = Store(data_dir)
    versions = [publish(store, "fetch", **{"prices.parquet": prices_frame(dt.date(2024, 3, 15),
                                                                          days=i + 1)})
                for i in range(4)]
    assert main(["prune", "--keep", "2", "--dry-run", "--data-dir", str(data_dir)]) == 0
    assert store.versions() == versions
    assert main(["prune", "--keep", "2", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "removed 2 version(s), kept 2" in out and versions[0] in out
    assert store.versions() == versions[2:]
    alert_id = History(data_dir).add_alert(run_id=None, rule="coverage", key="k",
                                           severity="critical", message="AAA missing",
                                           details={})
    assert main(["status", "--json", "--data-dir", str(data_dir)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["latest_version"] == versions[-1]
    assert [r["command"] for r in status["runs"]] == ["prune", "prune"]
    assert status["freshness"]["latest_session"] == "2024-03-15"
    assert "AAA missing" in [a["message"] for a in status["open_alerts"]]
    assert main(["status", "--ack", str(alert_id), "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert f"alert {alert_id}: acknowledged" in out and "recent runs" in out
    assert all(a.id != alert_id for a in History(data_dir).alerts())


def test_bad_storage_option_is_a_one_line_error(data_dir, capsys):
    assert main(["backup", "--to", str(data_dir.parent / "b"), "-o", "oops",
                 "--data-dir", str(data_dir)]) == 2
    assert capsys.readouterr().err.strip() == ("error: --storage-option #1: expected "
                                               "KEY=VALUE")


def test_status_shows_a_run_killed_inside_a_stage(data_dir, capsys):
    import os
    import subprocess
    import sys

    from aurora.config import AuroraConfig
    from aurora.ops.status import collect_status

    store = Store(data_dir)
    publish(store, "fetch", **{"prices.parquet": prices_frame(dt.date(2026, 11, 20))})
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    state = {"pid": int(dead.stdout), "command": "run", "stage": "build",
             "started_at": "2026-11-24T01:00:00+00:00"}
    store.state_dir.mkdir(parents=True, exist_ok=True)
    (store.state_dir / "running.json").write_text(json.dumps(state))
    report = collect_status(store, AuroraConfig(data_dir=data_dir))
    assert report.in_progress == {**state, "alive": False}
    assert main(["status", "--data-dir", str(data_dir)]) == 0
    assert "was interrupted in stage build" in capsys.readouterr().out
    (store.state_dir / "running.json").write_text(json.dumps({**state, "pid": os.getpid()}))
    assert collect_status(store, AuroraConfig(data_dir=data_dir)).in_progress["alive"]


def test_a_command_imports_only_its_own_module():
    """`aurora build` registers the build module alone and loads no library it does not use
    (HTTP and its retries, JSON schemas, remote file systems, exchange-calendars, pandas,
    Dask without a scheduler);
    `--help` and
    no command still list every command."""
    import subprocess
    import sys

    code = ("import sys; from aurora.cli.main import build_app; "
            "app = build_app('build'); import aurora.features.builder; "
            "heavy = ('httpx', 'tenacity', 'jsonschema', 'fsspec', 'exchange_calendars', "
            "'pandas', 'distributed', 'dask'); "
            "print(sorted(c.name for c in app.registered_commands), "
            "sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.endswith('_cmd')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "['build'] ['aurora.cli.build_cmd']"
    from aurora.cli.main import COMMAND_MODULES, build_app

    assert {c.name for c in build_app().registered_commands} >= set(COMMAND_MODULES) - {
        "import", "quarantine"}  # those two are groups


def test_the_console_script_freezes_the_collector_only_at_its_exit():
    import subprocess
    import sys

    code = ("import atexit, gc, sys; from aurora.cli import main as cli; "
            "cli.main(['--help']); print('main froze:', gc.get_freeze_count() > 0); "
            "atexit.register(lambda: print('run froze:', gc.get_freeze_count() > 0)); "
            "sys.argv = ['aurora', '--help']; cli.run()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "main froze: False" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "run froze: True"
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["aurora"] == "aurora.cli.main:run"
