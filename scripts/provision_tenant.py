#!/usr/bin/env python3
"""Provision a tenant and its first owner: the same code as `tenantry tenants create`.

    .venv/bin/python scripts/provision_tenant.py --name "Acme" --slug acme --admin-email a@acme.io --json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["tenants", "create", *sys.argv[1:]]))
