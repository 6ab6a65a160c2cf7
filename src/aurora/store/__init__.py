"""The versioned Parquet store under the data directory: versions, manifests, file names."""

from aurora.store import files
from aurora.store.files import MANIFEST
from aurora.store.manifest import FileEntry, Manifest, MemberInterval, UniverseRecord
from aurora.store.versions import Store, Transaction

__all__ = ["MANIFEST", "FileEntry", "Manifest", "MemberInterval", "Store", "Transaction",
           "UniverseRecord", "files"]
