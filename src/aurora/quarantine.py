"""Quarantine: symbols whose bars the fetch kept out of a version, and their releases.

A fetch that finds defective bars for one symbol (conflicting duplicates, impossible prices,
an unexplained jump, ...) quarantines that symbol instead of failing: its stored bars are
kept as they were (a new symbol has none), everything else is published, and the version's
`quarantine.json` (`aurora.store.files.QUARANTINE`) says why (`aurora.fetch.quarantine`
decides; `docs/fetch.md`). A person then looks at the bars and releases the symbol.

Contract:
- `QuarantineRecord` is the content of quarantine.json: `quarantined`, one
  `QuarantineEntry` per symbol (the problems that quarantined it, each a check name, every
  date involved and the message; when it was first quarantined and by which version), and
  `released`, one `Release` per release (the entry as released, who released it, when,
  why, and `refetch` until a fetch has read the symbol's whole history again).
- Later versions inherit the file unchanged; only a fetch and a release rewrite it. A
  record with nothing in it is no file at all.
- In the file, an entry's `version` is null when the version that wrote the file is the one
  that quarantined the symbol (a version cannot name itself before it is published);
  `read_quarantine` reads it as that version (`Store.origin`).
- What a release means to later checks (`QuarantineRecord.accepts`, `ended`): the problems
  it held are accepted, so a later finding of the same check for that symbol whose dates
  are all among the accepted ones is a warning, not an error (a conflicting duplicate bar
  on an accepted date resolves to the first bar served); a released `stale_symbol` ends the
  symbol's history at its last bar (no `stale_symbol` after it). Any other problem
  quarantines the symbol again.
- `release_symbol` publishes ONE version over `latest` (`Store.transaction(base=...)`)
  whose record no longer lists the symbol as quarantined and lists the release.
- Malformed files raise DataValidationError naming the file, the version and the field;
  a release of a symbol that is not quarantined raises ConfigError naming what is.
- Nothing here prints.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aurora.atomic import atomic_write_json
from aurora.errors import ConfigError, DataValidationError, StoreError
from aurora.ops.audit import os_user
from aurora.store import Store, Transaction
from aurora.store.files import QUARANTINE

FORMAT = 1
RELEASE_STAGE = "release"
_SYMBOL = re.compile(r"[A-Z][A-Z0-9.\-]{0,19}")
STALE_CHECK = "stale_symbol"


def utc_now() -> str:
    """The current UTC time as ISO 8601 (what the record stores)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _span(dates: tuple[dt.date, ...]) -> str:
    if not dates:
        return ""
    first, last = min(dates), max(dates)
    return f" on {first}" if first == last else f" {first}..{last} ({len(dates)} dates)"


@dataclass(frozen=True)
class Problem:
    """One finding that quarantined a symbol: check name, every date, the message."""

    check: str
    dates: tuple[dt.date, ...]
    message: str

    def describe(self) -> str:
        """`duplicates on 2024-02-27`, `large_move 2016-04-22..2016-05-02 (2 dates)`."""
        return f"{self.check}{_span(self.dates)}"

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "dates": [d.isoformat() for d in self.dates],
                "message": self.message}


@dataclass(frozen=True)
class QuarantineEntry:
    """A quarantined symbol: why (its problems, the first one the main reason), since when
    (`quarantined_at`, UTC ISO time) and since which version (None: not yet resolved)."""

    symbol: str
    problems: tuple[Problem, ...]
    quarantined_at: str
    version: str | None = None

    @property
    def check(self) -> str:
        return self.problems[0].check

    @property
    def message(self) -> str:
        return self.problems[0].message

    @property
    def dates(self) -> tuple[dt.date, ...]:
        return tuple(sorted({d for p in self.problems for d in p.dates}))

    @property
    def first_date(self) -> dt.date | None:
        return self.dates[0] if self.dates else None

    @property
    def last_date(self) -> dt.date | None:
        return self.dates[-1] if self.dates else None

    def reason(self) -> str:
        """One phrase: `duplicates on 2024-02-27; large_move on 2024-03-01`."""
        return "; ".join(p.describe() for p in self.problems)

    def to_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol, "check": self.check,
            "first_date": self.first_date.isoformat() if self.first_date else None,
            "last_date": self.last_date.isoformat() if self.last_date else None,
            "message": self.message, "version": self.version,
            "quarantined_at": self.quarantined_at,
            "problems": [p.to_json() for p in self.problems],
        }


@dataclass(frozen=True)
class Release:
    """A person's release of a quarantined symbol (see the module docstring)."""

    entry: QuarantineEntry
    released_at: str
    released_by: str
    reason: str
    released_over: str  # the version the release was published over
    refetch: bool = True  # until a fetch has read the symbol's whole history again

    def to_json(self) -> dict[str, Any]:
        return {**self.entry.to_json(), "released_at": self.released_at,
                "released_by": self.released_by, "reason": self.reason,
                "released_over": self.released_over, "refetch": self.refetch}


@dataclass(frozen=True)
class QuarantineRecord:
    """The content of quarantine.json (see the module docstring)."""

    quarantined: Mapping[str, QuarantineEntry] = field(default_factory=dict)
    released: tuple[Release, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.quarantined and not self.released

    def symbols(self) -> list[str]:
        """The quarantined symbols, sorted."""
        return sorted(self.quarantined)

    def pending_refetch(self) -> set[str]:
        """Released symbols whose whole history the next fetch reads again."""
        return {r.entry.symbol for r in self.released if r.refetch}

    def accepted(self) -> dict[str, dict[str, frozenset[dt.date]]]:
        """symbol -> check -> the dates its releases accepted."""
        out: dict[str, dict[str, set[dt.date]]] = {}
        for release in self.released:
            for problem in release.entry.problems:
                out.setdefault(release.entry.symbol, {}).setdefault(
                    problem.check, set()).update(problem.dates)
        return {s: {c: frozenset(d) for c, d in checks.items()} for s, checks in out.items()}

    def accepts(self, symbol: str | None, check: str, dates: Iterable[dt.date]) -> bool:
        """True when a release of `symbol` accepted `check` on every one of `dates` (a
        finding without dates is never accepted)."""
        wanted = set(dates)
        if symbol is None or not wanted:
            return False
        return wanted <= self.accepted().get(symbol, {}).get(check, frozenset())

    def ended(self) -> dict[str, dt.date]:
        """symbol -> the last date its history may have: released `stale_symbol` problems end
        the symbol the day before the first session it lacked."""
        out: dict[str, dt.date] = {}
        for release in self.released:
            for problem in release.entry.problems:
                if problem.check == STALE_CHECK and problem.dates:
                    out[release.entry.symbol] = min(problem.dates) - dt.timedelta(days=1)
        return out

    def release(self, symbol: str, *, reason: str, released_by: str, released_over: str,
                now: str | None = None) -> QuarantineRecord:
        """This record with `symbol` released (KeyError when it is not quarantined)."""
        entry = self.quarantined[symbol]
        rest = {s: e for s, e in self.quarantined.items() if s != symbol}
        made = Release(entry, now or utc_now(), released_by, reason, released_over)
        return QuarantineRecord(rest, (*self.released, made))

    def refetched(self, symbols: Iterable[str]) -> QuarantineRecord:
        """This record with the releases of `symbols` no longer waiting for a refetch."""
        done = set(symbols)
        return QuarantineRecord(self.quarantined, tuple(
            replace(r, refetch=False) if r.refetch and r.entry.symbol in done else r
            for r in self.released))

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT,
                "quarantined": [self.quarantined[s].to_json() for s in self.symbols()],
                "released": [r.to_json() for r in self.released]}

    @classmethod
    def parse(cls, doc: Any, where: str) -> QuarantineRecord:
        """The record of a quarantine.json document; DataValidationError `<where>: <field>:
        <problem>` for anything this module does not write."""
        reader = _Reader(where)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            reader.fail("format", f"expected an object with format {FORMAT}")
        quarantined: dict[str, QuarantineEntry] = {}
        for i, item in enumerate(reader.items(doc, "quarantined")):
            entry = reader.entry(item, f"quarantined[{i}]")
            if entry.symbol in quarantined:
                reader.fail(f"quarantined[{i}].symbol", f"{entry.symbol} listed twice")
            quarantined[entry.symbol] = entry
        released = []
        for i, item in enumerate(reader.items(doc, "released")):
            at = f"released[{i}]"
            entry = reader.entry(item, at)
            released.append(Release(
                entry, reader.text(item, "released_at", at), reader.text(item, "released_by", at),
                reader.text(item, "reason", at, empty=True), reader.text(item, "released_over", at),
                reader.flag(item, "refetch", at)))
        return cls(quarantined, tuple(released))


class _Reader:
    """Field-by-field parsing of quarantine.json with one-line errors."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, at: str, problem: str) -> None:
        raise DataValidationError(f"{self.where}: {at}: {problem}: not a record Aurora writes")

    def items(self, doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
        value = doc.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(key, "expected a list of objects")
        return value

    def text(self, obj: dict[str, Any], key: str, at: str, empty: bool = False) -> str:
        value = obj.get(key)
        if not isinstance(value, str) or (not empty and not value):
            self.fail(f"{at}.{key}", "expected text")
        return value  # type: ignore[return-value]

    def flag(self, obj: dict[str, Any], key: str, at: str) -> bool:
        value = obj.get(key)
        if not isinstance(value, bool):
            self.fail(f"{at}.{key}", "expected true or false")
        return bool(value)

    def dates(self, obj: dict[str, Any], at: str) -> tuple[dt.date, ...]:
        value = obj.get("dates")
        if not isinstance(value, list):
            self.fail(f"{at}.dates", "expected a list of YYYY-MM-DD dates")
        try:
            return tuple(sorted(dt.date.fromisoformat(d) for d in value))  # type: ignore[union-attr]
        except (TypeError, ValueError):
            self.fail(f"{at}.dates", "expected a list of YYYY-MM-DD dates")
        raise AssertionError  # unreachable: fail raises

    def entry(self, obj: dict[str, Any], at: str) -> QuarantineEntry:
        symbol = self.text(obj, "symbol", at)
        if not _SYMBOL.fullmatch(symbol):
            self.fail(f"{at}.symbol", f"{symbol!r} is not a ticker")
        raw = obj.get("problems")
        if not isinstance(raw, list) or not raw or not all(isinstance(p, dict) for p in raw):
            self.fail(f"{at}.problems", "expected a non-empty list of objects")
        problems = tuple(
            Problem(self.text(p, "check", f"{at}.problems[{k}]"),
                    self.dates(p, f"{at}.problems[{k}]"),
                    self.text(p, "message", f"{at}.problems[{k}]", empty=True))
            for k, p in enumerate(raw))  # type: ignore[arg-type]
        version = obj.get("version")
        if version is not None and (not isinstance(version, str) or not version):
            self.fail(f"{at}.version", "expected a version name or null")
        return QuarantineEntry(symbol, problems, self.text(obj, "quarantined_at", at), version)


# -- the store side -----------------------------------------------------------------------
def read_quarantine(store: Store, version: str | None = None) -> QuarantineRecord:
    """The record of `version` (default: latest); empty when the version holds none.

    Entries without a version are given the version that wrote the file. Raises StoreError
    when the file does not match its manifest, DataValidationError when it is not a record.
    """
    version = version or store.current_version()
    if version is None:
        return QuarantineRecord()
    path = store.verified_path(QUARANTINE, version)
    if path is None:
        return QuarantineRecord()
    where = f"{QUARANTINE} of version {version}"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise DataValidationError(f"{where}: not valid JSON ({type(exc).__name__})") from None
    record = QuarantineRecord.parse(doc, where)
    entries = [*record.quarantined.values(), *(r.entry for r in record.released)]
    if any(e.version is None for e in entries):
        writer = store.origin(QUARANTINE, version)
        made = writer.version if writer is not None else version

        def resolved(entry: QuarantineEntry) -> QuarantineEntry:
            return entry if entry.version is not None else replace(entry, version=made)

        record = QuarantineRecord(
            {s: resolved(e) for s, e in record.quarantined.items()},
            tuple(replace(r, entry=resolved(r.entry)) for r in record.released))
    return record


def write_quarantine(txn: Transaction, record: QuarantineRecord) -> None:
    """Put `record` into the version `txn` makes (no file when it is empty)."""
    if record.empty:
        txn.remove(QUARANTINE)
        return
    atomic_write_json(txn.path(QUARANTINE), record.to_json())
    txn.describe(QUARANTINE, quarantined=len(record.quarantined), released=len(record.released))


@dataclass(frozen=True)
class ReleaseResult:
    """What `release_symbol` did."""

    symbol: str
    entry: QuarantineEntry
    reason: str
    version: str  # the version published
    still_quarantined: tuple[str, ...]

    def summary_lines(self) -> list[str]:
        lines = [f"released {self.symbol} (quarantined since {self.entry.quarantined_at}, "
                 f"version {self.entry.version}: {self.entry.reason()})",
                 "its problems are accepted from now on; the next fetch reads its whole "
                 "history again (`aurora fetch` or `aurora run`)",
                 f"published version {self.version}"]
        if self.reason:
            lines.insert(1, f"reason: {self.reason}")
        if self.still_quarantined:
            lines.append(f"still quarantined: {', '.join(self.still_quarantined)}")
        return lines


def release_symbol(store: Store, symbol: str, *, reason: str = "",
                   released_by: str | None = None, now: str | None = None) -> ReleaseResult:
    """Release quarantined `symbol` (see the module docstring); publish and return what was
    done. ConfigError when it is not quarantined in `latest`; StoreError for an empty store
    or when another run publishes meanwhile (nothing is published then)."""
    symbol = symbol.strip().upper()
    version = store.current_version()
    if version is None:
        raise StoreError(f"{store.root}: the store is empty (run `aurora fetch` first)")
    record = read_quarantine(store, version)
    if symbol not in record.quarantined:
        held = ", ".join(record.symbols()) or "none"
        raise ConfigError(f"{symbol} is not quarantined in version {version} (quarantined: "
                          f"{held}); `aurora quarantine list` shows the record")
    entry = record.quarantined[symbol]
    updated = record.release(symbol, reason=reason, released_by=released_by or os_user(),
                             released_over=version, now=now)
    params = {"released": symbol, "check": entry.check, "reason": reason,
              "quarantined_since": entry.version}
    with store.transaction(RELEASE_STAGE, base=version, params=params) as txn:
        write_quarantine(txn, updated)
    published = store.current_version()
    assert published is not None
    return ReleaseResult(symbol, entry, reason, published, tuple(updated.symbols()))


@dataclass(frozen=True)
class QuarantineListing:
    """What `aurora quarantine list` shows: the record of one version."""

    version: str | None
    record: QuarantineRecord

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, **self.record.to_json()}

    def summary_lines(self) -> list[str]:
        if self.version is None:
            return ["the store is empty: nothing is quarantined"]
        record = self.record
        if not record.quarantined:
            lines = [f"no symbol is quarantined in version {self.version}"]
        else:
            lines = [f"{len(record.quarantined)} symbol(s) quarantined in version "
                     f"{self.version}:"]
            for symbol in record.symbols():
                entry = record.quarantined[symbol]
                lines.append(f"  {symbol}: {entry.reason()} (since {entry.quarantined_at}, "
                             f"version {entry.version}): {entry.message}")
            lines.append("release one with `aurora quarantine release SYMBOL --reason TEXT` "
                         "once its bars are checked")
        if record.released:
            lines.append(f"released ({len(record.released)}), their problems accepted:")
            for r in record.released:
                waiting = "; whole history re-read at the next fetch" if r.refetch else ""
                why = f": {r.reason}" if r.reason else ""
                lines.append(f"  {r.entry.symbol}: {r.entry.reason()} released {r.released_at} "
                             f"by {r.released_by}{why}{waiting}")
        return lines


def list_quarantine(store: Store) -> QuarantineListing:
    """The quarantine record of `latest`."""
    version = store.current_version()
    return QuarantineListing(version, read_quarantine(store, version))
