"""The engine changes nothing process-wide that a notebook calling it would inherit."""

from __future__ import annotations

import re
from pathlib import Path

import aurora.features

FORBIDDEN = re.compile(r"\b(mallopt|madvise|ctypes|_set_madvise_hugepage|_multiarray_umath)\b"
                       r"|np\._core|numpy\._core|np\.core\.|numpy\.core\.")


def test_no_allocator_settings_madvise_ctypes_or_private_numpy_api_in_the_engine():
    package = Path(aurora.features.__file__).parent
    found = [f"{path.name}:{n}: {line.strip()}"
             for path in sorted(package.glob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if FORBIDDEN.search(line)]
    assert found == []
