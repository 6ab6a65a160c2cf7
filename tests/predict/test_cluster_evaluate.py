"""The walk-forward's folds on a real Dask cluster (a scheduler and two worker processes on
127.0.0.1): the same report, bit for bit, as in this process."""

from __future__ import annotations

from aurora.cli.main import main
from aurora.cluster import connect
from aurora.predict import walk_forward
from aurora.store import Store


def test_folds_on_two_workers_give_the_in_process_report(planted, helpers, dask_cluster):
    prices, features = planted
    config = helpers.small_config()
    here = walk_forward(features, prices, config)
    seen: list[tuple[str, int, int]] = []
    with connect(dask_cluster.address) as runner:
        there = walk_forward(features, prices, config, runner=runner,
                             progress=lambda stage, done, n: seen.append((stage, done, n)))
    assert here.summary["protocol"]["folds"] > 2
    assert there.to_json() == here.to_json()
    assert [done for _, done, _ in seen] == list(range(1, here.summary["protocol"]["folds"] + 1))


def test_aurora_evaluate_names_the_cluster(tmp_path, planted, helpers, dask_cluster, capsys):
    prices, features = planted
    store = Store(tmp_path / "data")
    helpers.publish(store, prices=prices, features=features)
    small = helpers.small_config().predict.model_dump()
    toml = tmp_path / "aurora.toml"
    toml.write_text("[predict]\n" + "".join(f"{k} = {v!r}\n" for k, v in small.items()))
    argv = ["evaluate", "--data-dir", str(store.root), "--config", str(toml), "--no-progress"]
    assert main([*argv, "--scheduler", dask_cluster.address]) == 0
    out = capsys.readouterr().out
    assert f"folds trained on dask {dask_cluster.address} (2 workers, 2 threads)" in out
