"""errors.first_line: what a one-line error quotes of another library's error."""

from __future__ import annotations

import pytest

from aurora.errors import first_line


@pytest.mark.parametrize(("exc", "limit", "expected"), [
    (OSError("disk gone\nTraceback details"), 160, "disk gone"),
    (ValueError("\n  \n  padded first line  \nsecond"), 160, "padded first line"),
    (KeyError(""), 160, "''"),  # a KeyError's str is its key's repr
    (RuntimeError(""), 160, "RuntimeError"),
    (RuntimeError("   \n  "), 160, "RuntimeError"),
    (ValueError("x" * 50), 10, "x" * 10),
])
def test_the_first_non_blank_line_or_the_type_name(exc, limit, expected):
    assert first_line(exc, limit) == expected
