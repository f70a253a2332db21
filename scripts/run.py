#!/usr/bin/env python3
"""The README's run command: install what is needed, then serve the API.

Uses an embedded PostgreSQL (data in .tenantry/pgdata, kept across restarts) unless
DATABASE_URL is set. Extra arguments go to `tenantry serve` (e.g. --port 9000 --workers 2;
--reload for development: restart when a file under app/ changes).
"""

import sys

from _bootstrap import ensure_venv, exec_in_venv

if __name__ == "__main__":
    ensure_venv("embedded")
    exec_in_venv("tenantry", ["serve", *sys.argv[1:]])
