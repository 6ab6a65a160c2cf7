"""Helpers shared by the operations tests (imported via the path conftest.py adds)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import polars as pl

from aurora.atomic import atomic_write_json, atomic_write_parquet
from aurora.store import Store, UniverseRecord


def prices_frame(last: dt.date, symbols=("AAA", "BBB"), days: int = 3) -> pl.DataFrame:
    dates = [last - dt.timedelta(days=i) for i in reversed(range(days))]
    rows = [(d, s, 10.0 + i) for s in symbols for i, d in enumerate(dates)]
    return pl.DataFrame(rows, schema={"date": pl.Date, "symbol": pl.Utf8, "close": pl.Float64},
                        orient="row")


def publish(store: Store, stage: str, **files: pl.DataFrame | dict) -> str:
    """Publish a version holding `files` (frames as parquet, dicts as JSON); a version with
    prices records their symbols as its universe, as a fetch does."""
    prices = files.get("prices.parquet")
    universe = (UniverseRecord(symbols=tuple(prices["symbol"].unique().sort()), source="test")
                if isinstance(prices, pl.DataFrame) else None)
    with store.transaction(stage, base=store.current_version(), universe=universe) as txn:
        for name, content in files.items():
            if isinstance(content, pl.DataFrame):
                atomic_write_parquet(txn.path(name), content)
                meta = {"rows": content.height}
                if "date" in content.columns:
                    meta["date_max"] = content["date"].max().isoformat()
                txn.describe(name, **meta)
            else:
                atomic_write_json(txn.path(name), content)
    version = store.current_version()
    assert version is not None
    return version


def set_created_at(store: Store, version: str, when: dt.datetime) -> None:
    path = store.archive / version / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["created_at"] = when.isoformat()
    path.write_text(json.dumps(manifest))


class Receiver:
    """A real HTTP server recording JSON posts; `fail_first` requests get `fail_status`."""

    def __init__(self, fail_first: int = 0, fail_status: int = 500) -> None:
        self.posts: list[dict] = []
        self.paths: list[str] = []
        self.fail_first = fail_first
        self.fail_status = fail_status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.paths.append(self.path)
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(receiver.fail_status)
                    self.end_headers()
                    return
                receiver.posts.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str = "/hooks/T000/B000/token-s3cr3t-XYZ") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

