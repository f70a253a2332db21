#!/usr/bin/env python3
"""Provision a tenant and its first owner: the same code as `tenantry tenants create`.

    python3 scripts/provision_tenant.py --name "Acme" --slug acme --admin-email a@acme.io --json

Like the other scripts it runs with any python3: it installs the project into .venv first
(only when needed) and then runs there.
"""

import sys

from _bootstrap import ensure_venv, exec_in_venv

if __name__ == "__main__":
    ensure_venv("embedded")
    exec_in_venv("tenantry", ["tenants", "create", *sys.argv[1:]])
