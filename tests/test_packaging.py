"""The runtime wheel holds Aurora only: the test bed (emulator, synthetic market) stays out,
and production code never imports it."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from aurora.errors import NotInstalled

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_runtime_wheel_has_no_test_bed(tmp_path):
    pytest.importorskip("hatchling")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    [wheel] = tmp_path.glob("aurora-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "aurora/cli/main.py" in names and "aurora/resources/predictions.schema.json" in names
    assert not [n for n in names if "emulator" in n or "synthetic" in n or "testbed" in n]


def test_production_code_never_imports_the_test_bed():
    offenders = []
    for path in (ROOT / "src" / "aurora").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("aurora_testbed")]
    assert offenders == []


def test_missing_test_bed_is_one_line(monkeypatch):
    """Where the test bed is not installed, `aurora demo` says how to get it."""
    import typer

    from aurora.cli import main as cli

    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: [])
    app = typer.Typer()
    cli._register_plugins(app)
    for command in ("demo", "emulator"):
        with pytest.raises(NotInstalled, match=r"needs Aurora's test bed.*pip install -e testbed"):
            app(args=[command, "--years", "2"], standalone_mode=False)
