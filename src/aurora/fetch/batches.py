"""Symbols into request batches, and per-batch checkpoints so a killed run can resume.

Contract:
- `normalize_symbols` upper-cases and maps vendor spellings (aurora.universe), keeps the
  first occurrence of each symbol and raises UniverseError for an implausible ticker.
- A `BatchRequest` is up to `batch_size` symbols sharing one session window. Its `key` is a
  hash of (symbols, start, end, purpose) and names its checkpoint file.
- `plan_id(batches, params)` hashes the whole request plan; checkpoints live under
  `data/state/fetch/<plan-id>/`: one Parquet file per completed batch plus `index.json`,
  both written atomically, Parquet first. The index entry records the file's row count and
  the sha256 of its bytes. A batch counts as done only when the index lists it and its
  file has exactly the recorded sha256 and row count, so a kill at any point loses at most
  the batches in flight and never leaves a half batch that would be trusted, and a
  checkpoint altered afterwards (a changed value, a damaged disk) is fetched again, with a
  logged warning, instead of being published.
- `clean_checkpoints(root, keep)` removes every plan directory under `root` except `keep`:
  a plan id includes the day and the source, so another plan's batches (a killed run of
  another day, universe or window) can never be resumed by this run. A concurrent fetch
  of the same store would only lose its ability to resume (its bars are in memory).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import shutil
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from aurora.atomic import atomic_write_bytes, atomic_write_json, sha256_bytes
from aurora.errors import UniverseError
from aurora.universe import normalize_symbol, ticker_problem

log = logging.getLogger(__name__)

INDEX = "index.json"


def _digest(obj: Any, length: int = 16) -> str:
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def normalize_symbols(symbols: Iterable[str]) -> list[str]:
    """Normalised symbols in first-seen order, without duplicates (UniverseError if invalid)."""
    out: dict[str, None] = {}
    for raw in symbols:
        problem = ticker_problem(raw.strip())
        if problem:
            raise UniverseError(f"universe: {problem}")
        out.setdefault(normalize_symbol(raw), None)
    return list(out)


@dataclass(frozen=True)
class BatchRequest:
    """One multi-symbol request window: symbols x sessions start..end (inclusive)."""

    symbols: tuple[str, ...]
    start: dt.date
    end: dt.date
    purpose: str = "full"  # full | incremental | restatement

    @property
    def key(self) -> str:
        return _digest([list(self.symbols), self.start, self.end, self.purpose])

    def label(self) -> str:
        """`AAPL..MSFT (50 symbols, 2024-01-02..2024-06-28)` for messages."""
        names = self.symbols[0] if len(self.symbols) == 1 else (
            f"{self.symbols[0]}..{self.symbols[-1]}")
        return f"{names} ({len(self.symbols)} symbols, {self.start}..{self.end})"

    def to_dict(self) -> dict[str, Any]:
        return {"symbols": list(self.symbols), "start": self.start.isoformat(),
                "end": self.end.isoformat(), "purpose": self.purpose}


def make_batches(
    symbols: Sequence[str], start: dt.date, end: dt.date, size: int, purpose: str = "full"
) -> list[BatchRequest]:
    """Split `symbols` (kept in the given order) into batches of at most `size`."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    return [
        BatchRequest(tuple(symbols[i : i + size]), start, end, purpose)
        for i in range(0, len(symbols), size)
    ]


def plan_id(batches: Sequence[BatchRequest], params: dict[str, Any]) -> str:
    """A stable id for a request plan (the batches plus adjustment, feed, timeframe...)."""
    return _digest({"batches": [b.to_dict() for b in batches], "params": params})


class Checkpoint:
    """Completed batches of one plan under `directory` (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()

    def _index(self) -> dict[str, Any]:
        path = self.directory / INDEX
        try:
            index = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return {"batches": {}}
        return index if isinstance(index.get("batches"), dict) else {"batches": {}}

    def load(self, request: BatchRequest) -> pl.DataFrame | None:
        """The stored frame of a completed batch, or None when it must be fetched.

        None without a word when the index does not list the batch (never completed);
        None with a logged warning when it does but the file is missing or unreadable, or
        its sha256 or row count differs from the index entry's: that checkpoint is not
        trusted, the batch is fetched again.
        """
        entry = self._index()["batches"].get(request.key)
        if entry is None:
            return None
        problem = None
        try:
            data = (self.directory / str(entry["file"])).read_bytes()
        except (OSError, KeyError, TypeError) as exc:
            data, problem = b"", f"cannot be read ({type(exc).__name__})"
        if problem is None and sha256_bytes(data) != entry.get("sha256"):
            problem = ("does not match the sha256 recorded in its index" if entry.get("sha256")
                       else "has no sha256 recorded in its index")
        frame = None
        if problem is None:
            try:
                frame = pl.read_parquet(io.BytesIO(data))
            except (OSError, pl.exceptions.PolarsError):
                problem = "is not readable Parquet"
        if frame is not None and frame.height != entry.get("rows"):
            problem = f"has {frame.height} rows, not the {entry.get('rows')} recorded"
        if problem is not None:
            log.warning("checkpoint of batch %s in %s %s; fetching the batch again",
                        request.label(), self.directory, problem)
            return None
        return frame

    def verified_path(self, request: BatchRequest) -> Path | None:
        """The file of a completed batch once its bytes match the sha256 its index entry
        records (the row count is `load`'s to check), for a caller that scans only part of
        it; None as `load` (with its warning) otherwise."""
        entry = self._index()["batches"].get(request.key)
        if entry is None:
            return None
        path = self.directory / str(entry.get("file"))
        try:
            matches = sha256_bytes(path.read_bytes()) == entry.get("sha256")
        except OSError:
            matches = False
        if not matches:
            log.warning("checkpoint of batch %s in %s does not match its index; fetching the "
                        "batch again", request.label(), self.directory)
            return None
        return path

    def save(self, request: BatchRequest, frame: pl.DataFrame) -> None:
        """Record a completed batch: its Parquet file, then its index entry (with the
        file's row count and sha256)."""
        name = f"{request.key}.parquet"
        buffer = io.BytesIO()
        frame.write_parquet(buffer, compression="zstd", statistics=True)
        data = buffer.getvalue()
        atomic_write_bytes(self.directory / name, data)
        with self._lock:
            index = self._index()
            index["batches"][request.key] = {"file": name, "rows": frame.height,
                                             "sha256": sha256_bytes(data),
                                             **request.to_dict()}
            atomic_write_json(self.directory / INDEX, index)

    def completed_keys(self) -> set[str]:
        """Keys of the batches the index lists (their files are verified only by `load`)."""
        return set(self._index()["batches"])

    def clear(self) -> None:
        """Remove this plan's checkpoints (after a successful publish)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def clean_checkpoints(root: Path, keep: Path) -> list[str]:
    """Remove the plan directories under `root` other than `keep`; their names, sorted.

    Files directly under `root` and a missing `root` are left alone.
    """
    if not root.is_dir():
        return []
    removed = []
    for path in sorted(root.iterdir()):
        if path.is_dir() and not path.is_symlink() and path.name != keep.name:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed
