"""A real PgBouncer (Debian's `pgbouncer` package) in transaction mode, for tests.

Found on PATH or at /usr/sbin/pgbouncer; when it is missing the tests skip and say how to get
it (`.ci/run` installs it). It listens on a free loopback port, forwards every database name
to the test server (TCP, or the embedded server's Unix socket) and is stopped by PID.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.isolation.servers import free_loopback_port

CANDIDATES = ("pgbouncer", "/usr/sbin/pgbouncer", "/usr/local/bin/pgbouncer", "/opt/homebrew/bin/pgbouncer")
READY_TIMEOUT = 15.0  # seconds: only turns a hang into a failure


def pgbouncer_binary() -> str:
    for candidate in CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    pytest.skip("PgBouncer is not installed, so the PgBouncer tests cannot run: install it with "
                "`apt-get install -y pgbouncer` (Debian/Ubuntu) or `brew install pgbouncer`; "
                ".ci/run does this itself")


def server_address(admin_url: str) -> tuple[str, int]:
    """(host or Unix socket directory, port) of the test server, from its admin URL."""
    url = make_url(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    host = url.query.get("host") or url.host or "127.0.0.1"
    port = url.port or int(url.query.get("port") or 5432)
    return str(host), port


@dataclass
class PgBouncer:
    port: int
    process: subprocess.Popen
    root: Path

    def url(self, user: str, database: str) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        try:
            return (self.root / "pgbouncer.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # PgBouncer: SIGINT = safe shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def _run_as(host: str) -> str | None:
    """PgBouncer refuses to run as root: as root, run it as the owner of the server's socket
    directory (it must reach the socket), or as nobody over TCP."""
    if os.geteuid() != 0:
        return None
    if host.startswith("/"):
        return pwd.getpwuid(Path(host).stat().st_uid).pw_name
    return "nobody"


def start_pgbouncer(admin_url: str, users: list[str], *, pool_size: int = 2, max_client_conn: int = 200,
                    extra_databases: dict[str, str] | None = None) -> PgBouncer:
    binary = pgbouncer_binary()
    host, server_port = server_address(admin_url)
    root = Path(tempfile.mkdtemp(prefix="tenantry-pgbouncer-"))
    port = free_loopback_port(19000, 19999)
    (root / "userlist.txt").write_text("".join(f'"{u}" ""\n' for u in users))
    databases = [f"* = host={host} port={server_port}"]
    for alias, options in (extra_databases or {}).items():
        databases.append(f"{alias} = host={host} port={server_port} {options}")
    (root / "pgbouncer.ini").write_text("\n".join([
        "[databases]", *databases, "",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "auth_type = trust",
        f"auth_file = {root / 'userlist.txt'}",
        "pool_mode = transaction",
        f"default_pool_size = {pool_size}",
        "min_pool_size = 0",
        "reserve_pool_size = 0",
        f"max_client_conn = {max_client_conn}",
        # Transaction mode: PgBouncer runs no reset query between clients (what leaks a SET).
        "server_reset_query =",
        "ignore_startup_parameters = extra_float_digits",
        f"logfile = {root / 'pgbouncer.log'}",
        f"pidfile = {root / 'pgbouncer.pid'}",
        "",
    ]))
    user = _run_as(host)
    cmd = [binary, str(root / "pgbouncer.ini")]
    if user:
        os.chown(root, pwd.getpwnam(user).pw_uid, -1)
        for name in ("userlist.txt", "pgbouncer.ini"):
            os.chmod(root / name, 0o644)
        cmd[1:1] = ["-u", user]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    bouncer = PgBouncer(port=port, process=process, root=root)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            bouncer.stop()
            raise RuntimeError(f"pgbouncer exited with {process.returncode}: {err}\n{bouncer.log()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return bouncer
        if time.monotonic() > deadline:
            bouncer.stop()
            raise TimeoutError(f"pgbouncer not listening after {READY_TIMEOUT}s:\n{bouncer.log()}")
        time.sleep(0.05)  # polling interval only
