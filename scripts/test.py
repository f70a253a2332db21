#!/usr/bin/env python3
"""The README's test command: install what is needed, then run the whole suite.

Tests run against the embedded PostgreSQL unless TEST_DATABASE_URL names a server
(a superuser URL: the suite creates its roles and a fresh database there).
Extra arguments go to pytest (e.g. -k items -x).
"""

import sys

from _bootstrap import ensure_venv, exec_in_venv

if __name__ == "__main__":
    ensure_venv()
    exec_in_venv("pytest", sys.argv[1:])
