"""Shared by the scripts: make .venv and install the project into it, pinned by constraints.txt.

Only the standard library is used here, because this runs before anything is installed.
Every install uses `-c constraints.txt` (exact versions of every dependency, made by
scripts/lock.py), so a release upstream cannot break a fresh clone overnight. The install is
skipped when pyproject.toml and constraints.txt have not changed since the last one (a stamp
file holds their hash), so the second run starts in a second, not a minute.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / ".tenantry-installed"
CONSTRAINTS = ROOT / "constraints.txt"


def venv_bin(name: str) -> Path:
    return VENV / "bin" / name


def _inputs_hash() -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    if CONSTRAINTS.exists():
        digest.update(CONSTRAINTS.read_bytes())
    return digest.hexdigest()


def _installed() -> tuple[str, set[str]]:
    """(hash of pyproject.toml + constraints.txt, extras) of the last install, from the stamp."""
    try:
        digest, _, extras = STAMP.read_text().strip().partition(" ")
    except OSError:
        return "", set()
    return digest, {e for e in extras.split(",") if e}


def ensure_venv(extras: str = "dev,embedded") -> None:
    """The run command needs `embedded`; the test command adds `dev` (tests and their tools)."""
    if sys.version_info < (3, 11):
        sys.exit("Tenantry needs Python 3.11 or newer (found %s)." % sys.version.split()[0])
    if not venv_bin("python").exists():
        print(f"[tenantry] creating virtualenv in {VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    digest, have = _installed()
    want = {e for e in extras.split(",") if e}
    if digest == _inputs_hash() and want <= have:
        return
    # Keep what an earlier install added (run, then test: one venv, no reinstall back and forth).
    union = sorted(want | have)
    print(f"[tenantry] installing dependencies ({', '.join(union) or 'core'}; first run only)", flush=True)
    pip = [str(venv_bin("python")), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    pinned = ["-c", str(CONSTRAINTS)] if CONSTRAINTS.exists() else []
    # pip itself stays the one the venv came with: an upgrade would be the one unpinned install.
    target = f".[{','.join(union)}]" if union else "."
    subprocess.run([*pip, *pinned, "-e", target], check=True, cwd=ROOT)
    STAMP.write_text(f"{_inputs_hash()} {','.join(union)}")


def exec_in_venv(program: str, args: list[str]) -> None:
    """Replace this process with a program from the virtualenv (signals go straight to it)."""
    exe = str(venv_bin(program))
    os.chdir(ROOT)
    os.execv(exe, [exe, *args])
