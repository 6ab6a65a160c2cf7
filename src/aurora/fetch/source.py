"""Where stored prices came from: a store is bound to one price source.

Contract:
- A `PriceSource` is the base URL of the market-data API (credentials, query and fragment
  removed by `aurora.redaction.redact_url`), the feed, the adjustment, and whether the bars
  are the test bed's synthetic market (`synthetic`, set through `fetch.synthetic` by `aurora
  demo`; production code never imports the test bed).
- The fetch records it in the prices' manifest entry (`source_url`, `feed`, `adjustment`,
  `synthetic`) and in its version's params (`base_url`, `feed`, `adjustment`, `synthetic`).
  Later versions inherit the entry with the file, so every version says where its prices
  came from.
- `stored_source(store, version)` reads it back: from the entry, else (versions written
  before the source was recorded) from the params of the version that wrote the prices.
  A version without prices gives None; an unknown URL is None (nothing to compare).
- Two sources have the same *origin* when their URLs (where both are known) and their
  `synthetic` flags are equal. Feed and adjustment are compared separately: a change there
  refetches everything from the same origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aurora.config import AuroraConfig
from aurora.redaction import redact_url
from aurora.store import Store


@dataclass(frozen=True)
class PriceSource:
    """One source of daily bars (see the module docstring)."""

    url: str | None
    feed: str | None
    adjustment: str | None
    synthetic: bool = False

    @classmethod
    def of(cls, config: AuroraConfig) -> PriceSource:
        """The source a fetch with `config` reads from."""
        return cls(redact_url(config.alpaca.data_url, keep_path=True).rstrip("/"),
                   config.fetch.feed, config.fetch.adjustment, config.fetch.synthetic)

    def origin(self) -> str:
        """`https://data.alpaca.markets`, or `http://127.0.0.1:5000 (synthetic demo data)`."""
        where = self.url or "an unrecorded URL"
        return f"{where} (synthetic demo data)" if self.synthetic else where

    def describe(self) -> str:
        """The origin with feed and adjustment, for summaries."""
        kind = "; SYNTHETIC test-bed data, not market prices" if self.synthetic else ""
        return f"{self.url} (feed {self.feed}, adjustment {self.adjustment}{kind})"

    def same_origin(self, other: PriceSource) -> bool:
        """Same URL (when both are known) and same synthetic flag."""
        if self.synthetic != other.synthetic:
            return False
        return self.url is None or other.url is None or self.url == other.url

    def meta(self) -> dict[str, Any]:
        """The keys recorded in the prices' manifest entry."""
        return {"source_url": self.url, "feed": self.feed, "adjustment": self.adjustment,
                "synthetic": self.synthetic}


def stored_source(store: Store, version: str | None = None) -> PriceSource | None:
    """The source of the prices `version` (default: latest) holds, or None without prices."""
    version = version or store.current_version()
    if version is None:
        return None
    name = store.manifest(version).prices_name()
    if name is None:
        return None
    entry = store.manifest(version).files[name]
    writer = store.origin(name, version)
    params: dict[str, Any] = writer.params if writer is not None else {}
    url = entry.meta("source_url") or params.get("base_url") or params.get("source")
    synthetic = entry.meta("synthetic", params.get("synthetic"))
    return PriceSource(
        redact_url(str(url), keep_path=True).rstrip("/") if url else None,
        entry.meta("feed", params.get("feed")),
        entry.meta("adjustment", params.get("adjustment")),
        bool(synthetic),
    )
