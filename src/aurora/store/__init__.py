"""The versioned Parquet store under the data directory."""

from aurora.store.versions import MANIFEST, Store, Transaction

__all__ = ["MANIFEST", "Store", "Transaction"]
