#!/usr/bin/env python3
"""Bootstrap and run Aurora from a fresh checkout with nothing but Python 3.11+.

    python3 scripts/dev.py demo [ARGS...]   # create .venv (runtime lock), run `aurora demo`
    python3 scripts/dev.py test [ARGS...]   # create .venv (dev lock) and chromium, run ruff
                                            # + pytest
    python3 scripts/dev.py aurora ARGS...   # any aurora command inside the environment

The virtual environment lives in `.venv/` next to this repository. It is (re)installed
from the pinned lock files whenever their content changes, so a second call starts at once.
Both environments also get the test bed (`testbed/`: the Alpaca emulator and the synthetic
market, which add `aurora emulator` and `aurora demo`), installed editable; it is not part
of Aurora's runtime wheel.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


TESTBED = ROOT / "testbed"


def _lock_digest(lock: Path) -> str:
    text = (lock.read_bytes() + (ROOT / "pyproject.toml").read_bytes()
            + (TESTBED / "pyproject.toml").read_bytes())
    return hashlib.sha256(text).hexdigest()


def ensure_env(dev: bool) -> None:
    """Create `.venv` and install the locked dependencies, Aurora and its test bed (both
    editable) once."""
    if sys.version_info < (3, 11):  # noqa: UP036 - runs on the system Python
        sys.exit(f"Aurora needs Python 3.11+, this is {sys.version.split()[0]}")
    lock = ROOT / ("requirements-dev.lock" if dev else "requirements.lock")
    stamp = VENV / f".installed-{'dev' if dev else 'runtime'}"
    digest = _lock_digest(lock)
    if stamp.exists() and stamp.read_text() == digest and PY.exists():
        return
    if not PY.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(PY), "-m", "pip", "--disable-pip-version-check", "-q"]
    print(f"installing locked dependencies from {lock.name}", flush=True)
    subprocess.run([*pip, "install", "-r", str(lock)], check=True)
    subprocess.run([*pip, "install", "--no-deps", "-e", str(ROOT), "-e", str(TESTBED)],
                   check=True)
    stamp.write_text(digest)


def ensure_chromium() -> None:
    """Debian's `chromium`, which the report's browser test drives (tests/predict/
    test_report.py), installed with apt-get when missing (as root, or through a sudo that
    asks no password). Without apt-get this says what to install and the test will say
    it again."""
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        return
    apt = shutil.which("apt-get")
    root = os.name != "nt" and os.geteuid() == 0
    prefix = [] if root else (["sudo", "-n"] if shutil.which("sudo") else None)
    if apt is None or prefix is None:
        print("chromium not found: install Debian's chromium package (or your system's) "
              "for the report's browser test", flush=True)
        return
    print("installing chromium (Debian package) for the report's browser test", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*prefix, apt, "update", "-q"], check=True, env=env)
    subprocess.run([*prefix, apt, "install", "-y", "-q", "--no-install-recommends",
                    "chromium"], check=True, env=env)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "aurora"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_env(dev=command == "test" or bool(os.environ.get("AURORA_DEV_ENV")))
    if command == "demo":
        return subprocess.call([str(BIN / "aurora"), "demo", *rest])
    if command == "aurora":
        return subprocess.call([str(BIN / "aurora"), *rest])
    ensure_chromium()
    lint = subprocess.call([str(BIN / "ruff"), "check", "src", "testbed", "tests", "benchmarks",
                            "scripts"])
    if lint != 0:
        return lint
    return subprocess.call([str(PY), "-m", "pytest", "-n", "2", "-q", *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
