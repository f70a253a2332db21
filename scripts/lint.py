#!/usr/bin/env python3
"""The lint and type checks CI runs before the tests: ruff (lint + import order) and mypy.

    python3 scripts/lint.py          # installs what it needs (like scripts/test.py), then checks

Both are configured in pyproject.toml ([tool.ruff], [tool.mypy]); `app/` must stay clean.
"""

import subprocess
import sys

from _bootstrap import ROOT, ensure_venv, venv_bin

CHECKS = (
    ["ruff", "check", "app", "tests/db", "alembic/versions", "scripts/lint.py"],
    ["mypy"],
)

if __name__ == "__main__":
    ensure_venv(extras="dev")
    failed = [check[0] for check in CHECKS if subprocess.run([str(venv_bin(check[0])), *check[1:]], cwd=ROOT).returncode]
    if failed:
        sys.exit(f"[tenantry] lint failed: {', '.join(failed)}")
    print("[tenantry] lint: ruff and mypy clean", flush=True)
