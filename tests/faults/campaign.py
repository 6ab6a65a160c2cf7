"""A fault-injection campaign against real `aurora` commands (test code, not shipped).

Every trial copies a baseline store, runs one command in a subprocess against the test-bed
emulator on 127.0.0.1 with one fault, then checks what a user relies on:

1. `latest` is absent, the version it was, or a whole new version whose every file matches
   its manifest; every version in the archive still verifies (nothing published is damaged);
2. a command that failed said so in exactly one `error:` line (a kill says nothing);
3. the same command run again without the fault succeeds and gives the same prices,
   features and predictions as a run that was never interrupted.

A trial that breaks 1 or 3 counts as data lost. Faults:
- `kill` / `enospc`: SIGKILL, or ENOSPC, at the Nth file operation (`inject.py`), N drawn
  over every operation the command makes (counted by a dry run);
- `api`: a random FaultPlan of the emulator (429 bursts, 5xx and HTML errors, dropped
  connections, slow answers) during an incremental fetch;
- `tmpfs`: a real full disk, a small tmpfs mounted where the machine allows it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from aurora.errors import StoreError
from aurora.store import Store
from aurora.store.bars import read_prices
from aurora.store.datasets import read_features

HERE = Path(__file__).resolve().parent
KEY_ID, SECRET = "PKFAULTS0001", "fault-campaign-secret"
SYMBOLS = ("AAPL", "MSFT", "JPM", "XOM", "JNJ", "KO")
START, FIRST_END, END = dt.date(2023, 1, 3), dt.date(2024, 11, 29), dt.date(2024, 12, 31)
SMALL = {"AURORA_PREDICT__N_ESTIMATORS": "10", "AURORA_PREDICT__MIN_DATA_IN_LEAF": "10",
         "AURORA_PREDICT__TRAIN_SESSIONS": "200", "AURORA_PREDICT__MIN_TRAIN_SESSIONS": "100",
         "AURORA_PREDICT__TEST_SESSIONS": "63", "AURORA_FETCH__BATCH_SIZE": "2",
         "AURORA_FETCH__MAX_RETRIES": "3", "AURORA_FETCH__BACKOFF_BASE_SECONDS": "0.05",
         "AURORA_FETCH__BACKOFF_MAX_SECONDS": "0.2", "AURORA_VALIDATION__SEVERITIES__LARGE_MOVE":
         "warning"}
VOLATILE = ("generated_at", "created_at", "seconds", "elapsed", "version", "built_at")
RUNNER = ("import sys; sys.path.insert(0, {here!r}); import inject; inject.install(); "
          "from aurora.cli.main import main; sys.exit(main())")


@dataclass
class Tally:
    """What a campaign did: trials (inputs tried), faults that fired, trials whose store and
    rerun were intact (survived), trials that lost or damaged data."""

    trials: int = 0
    faults: int = 0
    survived: int = 0
    data_lost: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, kind: str, fired: bool, problem: str | None) -> None:
        self.trials += 1
        self.faults += int(fired)
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        if problem is None:
            self.survived += 1
        else:
            self.data_lost += 1
            self.problems.append(problem)

    def line(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.by_kind.items()))
        return (f"{self.trials} trials ({kinds}), {self.faults} faults fired, "
                f"{self.survived} survived, {self.data_lost} lost data")


def _strip(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if not any(t in k for t in VOLATILE)}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def outputs(store: Store) -> dict[str, object]:
    """The user-facing outputs of the latest version, without timestamps."""
    out: dict[str, object] = {}
    version = store.current_version()
    out["prices.parquet"] = (read_prices(store, version) if version is not None
                             and store.manifest(version).prices_name() is not None else None)
    try:
        out["features"] = read_features(store)
    except StoreError:  # the latest version holds no features
        out["features"] = None
    path = store.verified_path("predictions.json")
    out["predictions.json"] = _strip(json.loads(path.read_text())) if path else None
    return out


def same_outputs(a: dict[str, object], b: dict[str, object]) -> str | None:
    for name, left in a.items():
        right = b.get(name)
        if isinstance(left, pl.DataFrame) or isinstance(right, pl.DataFrame):
            equal = (isinstance(left, pl.DataFrame) and isinstance(right, pl.DataFrame)
                     and left.equals(right))
        else:
            equal = left == right
        if not equal:
            return f"{name} differs from the uninterrupted run"
    return None


def damage(store: Store, before: str | None) -> str | None:
    """Why the store is not whole (invariant 1), or None."""
    current = store.current_version()
    if current is None:
        return None if before is None else f"latest vanished (was {before})"
    if current not in store.versions():
        return f"latest -> {current}, which is not a published version"
    for version in store.versions():
        problems = store.verify(version)
        if problems:
            return f"version {version} damaged: {problems[0]}"
    return None


class Bed:
    """The emulator, a baseline store and the environment of the campaign's commands."""

    def __init__(self, root: Path, server_url: str) -> None:
        self.root, self.url = root, server_url
        self.baseline = root / "baseline"

    def env(self, data_dir: Path, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "AURORA_"))}
        env.update(SMALL, APCA_API_KEY_ID=KEY_ID, APCA_API_SECRET_KEY=SECRET,
                   APCA_API_DATA_URL=self.url, APCA_API_BASE_URL=self.url,
                   AURORA_DATA_DIR=str(data_dir), **extra)
        return env

    def run(self, argv: list[str], data_dir: Path, *, kind: str = "count", at: int = 0,
            count_file: Path | None = None) -> subprocess.CompletedProcess[str]:
        extra = {"AURORA_FAULT_KIND": kind, "AURORA_FAULT_AT": str(at)}
        if count_file is not None:
            extra["AURORA_FAULT_COUNT_FILE"] = str(count_file)
        return subprocess.run(
            [sys.executable, "-c", RUNNER.format(here=str(HERE)), *argv],
            env=self.env(data_dir, **extra), cwd=self.root, capture_output=True, text=True,
            timeout=300)

    def make_baseline(self) -> None:
        """fetch to FIRST_END, build, predict: the store every trial starts from."""
        for argv in (["fetch", "--start", START.isoformat(), "--end", FIRST_END.isoformat(),
                      "--no-progress", "--universe", str(self.universe_file())],
                     ["build", "--no-progress"], ["predict", "--no-progress"]):
            done = self.run(argv, self.baseline)
            if done.returncode != 0:
                raise RuntimeError(f"baseline {argv[0]} failed: {done.stderr[-500:]}")

    def universe_file(self) -> Path:
        path = self.root / "universe.txt"
        path.write_text("".join(f"{s}\n" for s in SYMBOLS))
        return path

    @contextlib.contextmanager
    def copy(self) -> Iterator[Path]:
        """A private copy of the baseline store (symlinks kept)."""
        target = Path(tempfile.mkdtemp(prefix="trial-", dir=self.root)) / "data"
        shutil.copytree(self.baseline, target, symlinks=True)
        try:
            yield target
        finally:
            shutil.rmtree(target.parent, ignore_errors=True)


COMMANDS: dict[str, list[str]] = {
    "fetch": ["fetch", "--end", END.isoformat(), "--no-progress"],
    "build": ["build", "--no-progress"],
    "predict": ["predict", "--no-progress"],
    "import": ["import", "sector-map", "{sectors}"],
    "rollback": ["rollback", "--to", "{parent}"],  # --to: a rerun after a kill is idempotent
    "prune": ["prune", "--keep", "2"],
}


def _argv(bed: Bed, name: str) -> list[str]:
    sectors = bed.root / "sectors.csv"
    if not sectors.exists():
        sectors.write_text("symbol,sector\n" + "".join(f"{s},Technology\n" for s in SYMBOLS))
    parent = Store(bed.baseline).manifest().parent or ""
    return [a.format(sectors=sectors, parent=parent) for a in COMMANDS[name]]


def reference(bed: Bed, name: str) -> tuple[int, dict[str, object], str | None]:
    """(file operations the command makes, its outputs, its version) on a clean copy."""
    with bed.copy() as data:
        count = data.parent / "ops"
        done = bed.run(_argv(bed, name), data, count_file=count)
        if done.returncode != 0:
            raise RuntimeError(f"clean {name} failed: {done.stderr[-500:]}")
        store = Store(data)
        return int(count.read_text()), outputs(store), store.current_version()


def one_line_error(done: subprocess.CompletedProcess[str]) -> str | None:
    """None when a failure said exactly one `error:` line and no traceback."""
    if done.returncode == 0 or done.returncode < 0:  # success, or killed by a signal
        return None
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("error: ")]
    if "Traceback" in done.stderr or len(lines) != 1:
        return f"exit {done.returncode} without one error line: {done.stderr[-300:]!r}"
    return None


def file_trial(bed: Bed, name: str, kind: str, at: int,
               expected: dict[str, object]) -> tuple[bool, str | None]:
    """One kill/enospc trial of command `name` at operation `at`: (fired, problem)."""
    with bed.copy() as data:
        store = Store(data)
        before = store.current_version()
        done = bed.run(_argv(bed, name), data, kind=kind, at=at)
        fired = done.returncode != 0
        problem = damage(store, before) or (one_line_error(done) if kind == "enospc" else None)
        if problem is None:
            again = bed.run(_argv(bed, name), data)
            if again.returncode != 0:
                problem = f"rerun failed: {again.stderr[-300:]!r}"
            else:
                problem = damage(store, before) or same_outputs(expected, outputs(store))
        return fired, None if problem is None else f"{name} {kind}@{at}: {problem}"


def file_campaign(bed: Bed, tally: Tally, rng: random.Random, *, commands: list[str],
                  points: int, deadline: float,
                  kinds: tuple[str, ...] = ("kill", "enospc")) -> None:
    """`points` trials of each kind per command, spread over its file operations."""
    for name in commands:
        if time.monotonic() > deadline:
            return
        total, expected, _ = reference(bed, name)
        picks = sorted(rng.sample(range(1, total + 1), min(points, total)))
        for kind in kinds:
            for at in picks:
                if time.monotonic() > deadline:
                    return
                fired, problem = file_trial(bed, name, kind, at, expected)
                tally.add(kind, fired, problem)


def api_campaign(bed: Bed, server: object, tally: Tally, rng: random.Random, *, trials: int,
                 deadline: float) -> None:
    """Incremental fetches under random emulator faults: each either publishes exactly the
    clean result or fails with one line and leaves `latest` as it was."""
    _, expected, _ = reference(bed, "fetch")
    plan = server.faults  # type: ignore[attr-defined]
    for _ in range(trials):
        if time.monotonic() > deadline:
            return
        plan.clear()
        for _ in range(rng.randint(1, 4)):
            choice = rng.choice(("rate_limit", "error", "html", "drop", "slow"))
            at = rng.randint(1, 8)
            if choice == "rate_limit":
                plan.rate_limit_burst(rng.randint(1, 3), at_request=at)
            elif choice == "error":
                plan.error(rng.choice((500, 502, 503, 504)), count=rng.randint(1, 5),
                           at_request=at)
            elif choice == "html":
                plan.error(502, body="html", at_request=at)
            elif choice == "drop":
                plan.drop_connection(mode=rng.choice(("no_response", "partial_body")),
                                     at_request=at)
            else:
                plan.slow(0.2, at_request=at)
        planned = plan.pending()
        with bed.copy() as data:
            store = Store(data)
            before = store.current_version()
            done = bed.run(_argv(bed, "fetch"), data)
            fired = plan.pending() < planned
            problem = damage(store, before) or one_line_error(done)
            if problem is None and done.returncode == 0:
                problem = same_outputs({"prices.parquet": expected["prices.parquet"]},
                                       {"prices.parquet": outputs(store)["prices.parquet"]})
            elif problem is None and store.current_version() != before:
                problem = "a failed fetch moved latest"
            tally.add("api", fired, None if problem is None else f"fetch api: {problem}")
    plan.clear()


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


@contextlib.contextmanager
def tmpfs(size: int) -> Iterator[Path | None]:
    """A tmpfs of `size` bytes mounted on a new directory, or None where mounting is not
    allowed (not root, no CAP_SYS_ADMIN): callers skip the real full-disk trials then."""
    where = Path(tempfile.mkdtemp(prefix="aurora-full-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(where)], capture_output=True).returncode == 0
    try:
        yield where if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", str(where)], capture_output=True)
        shutil.rmtree(where, ignore_errors=True)


def _fill(mount: Path, leave: int) -> None:
    """Take all but `leave` bytes of the filesystem with one file."""
    stats = os.statvfs(mount)
    free = stats.f_bavail * stats.f_frsize
    with open(mount / "filler", "wb") as fh:
        fh.truncate(0)
        chunk = b"\0" * (1 << 20)
        remaining = max(free - leave, 0)
        while remaining > 0:
            fh.write(chunk[:min(len(chunk), remaining)])
            remaining -= min(len(chunk), remaining)


def disk_full_campaign(bed: Bed, tally: Tally, *, commands: list[str],
                       margins: tuple[int, ...], deadline: float) -> bool:
    """Each command on a copy of the baseline in a tmpfs only `margin` bytes larger than it:
    it fails with one line (or fits and succeeds) and the store stays whole. False when no
    tmpfs could be mounted."""
    size = 4 * _du(bed.baseline) + (16 << 20)
    for name in commands:
        for margin in margins:
            if time.monotonic() > deadline:
                return True
            with tmpfs(size) as mount:
                if mount is None:
                    return False
                data = mount / "data"
                shutil.copytree(bed.baseline, data, symlinks=True)
                _fill(mount, leave=margin)
                store = Store(data)
                before = store.current_version()
                done = bed.run(_argv(bed, name), data)
                problem = damage(store, before) or one_line_error(done)
                if problem is None and done.returncode != 0 and \
                        store.current_version() != before:
                    problem = "a failed command moved latest"
                tally.add("disk_full", done.returncode != 0,
                          None if problem is None else f"{name} full disk +{margin}: {problem}")
    return True
