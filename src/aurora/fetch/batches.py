"""Symbols into request batches, and per-batch checkpoints so a killed run can resume.

Contract:
- `normalize_symbols` upper-cases and maps vendor spellings (aurora.universe), keeps the
  first occurrence of each symbol and raises UniverseError for an implausible ticker.
- A `BatchRequest` is up to `batch_size` symbols sharing one session window. Its `key` is a
  hash of (symbols, start, end, purpose) and names its checkpoint file.
- `plan_id(batches, params)` hashes the whole request plan; checkpoints live under
  `data/state/fetch/<plan-id>/`: one Parquet file per completed batch plus `index.json`,
  both written atomically, Parquet first. A batch counts as done only when the index lists
  it and its file has the recorded row count, so a kill at any point loses at most the
  batches in flight and never leaves a half batch that would be trusted.
- `clean_checkpoints(root, keep)` removes every plan directory under `root` except `keep`:
  a plan id includes the day and the source, so another plan's batches (a killed run of
  another day, universe or window) can never be resumed by this run. A concurrent fetch
  of the same store would only lose its ability to resume (its bars are in memory).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from aurora.atomic import atomic_write_json, atomic_write_parquet
from aurora.errors import UniverseError
from aurora.universe import normalize_symbol, ticker_problem

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
        """The stored frame of a completed batch, or None when it must be fetched."""
        entry = self._index()["batches"].get(request.key)
        if entry is None:
            return None
        path = self.directory / entry["file"]
        try:
            frame = pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError):
            return None
        return frame if frame.height == entry.get("rows") else None

    def save(self, request: BatchRequest, frame: pl.DataFrame) -> None:
        """Record a completed batch: its Parquet file, then its index entry."""
        name = f"{request.key}.parquet"
        atomic_write_parquet(self.directory / name, frame)
        with self._lock:
            index = self._index()
            index["batches"][request.key] = {"file": name, "rows": frame.height,
                                             **request.to_dict()}
            atomic_write_json(self.directory / INDEX, index)

    def completed_keys(self) -> set[str]:
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
