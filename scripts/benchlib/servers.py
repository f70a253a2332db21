"""The servers under test: uvicorn processes in their own process groups, stopped by PID."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
PORT_RANGE = (19000, 19999)

# Every process group this run started, so the last-resort cleanup can reach them all.
_started: set[int] = set()


def free_port(exclude: set[int] = frozenset()) -> int:
    """A port in 19000-19999 that nothing listens on (bound and released to check)."""
    candidates = list(range(*PORT_RANGE))
    random.shuffle(candidates)
    for port in candidates:
        if port in exclude:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 19000-19999")


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen
    log_path: Path
    pids: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """uvicorn's worker processes (spawned children of the supervisor; itself with --workers 1)."""
        try:
            out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True).stdout
        except OSError:
            return [self.proc.pid]
        workers = []
        for pid in map(int, out.split()):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:  # not multiprocessing's resource tracker
                workers.append(pid)
        return workers or [self.proc.pid]

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(name: str, app: str, *, port: int, workers: int, env: dict[str, str], log_dir: Path,
          app_dir: Path | None = None) -> Server:
    cmd = [str(ROOT / ".venv" / "bin" / "uvicorn"), app, "--factory", "--workers", str(workers),
           "--no-access-log", "--log-level", "warning", "--host", "127.0.0.1", "--port", str(port)]
    if app_dir is not None:
        cmd += ["--app-dir", str(app_dir)]
    if not Path(cmd[0]).exists():
        cmd[0:1] = [str(Path(sys.executable).with_name("uvicorn"))]
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "ab")
    log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
    log.flush()
    # Own session = own process group: one killpg reaches the supervisor and every worker.
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    _started.add(proc.pid)
    return Server(name, port, proc, log_path)


def wait_ready(server: Server, path: str = "/healthz", timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url + path, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} not ready after {timeout:.0f}s:\n{server.log_tail()}")


def stop(server: Server | None, timeout: float = 10.0) -> None:
    if server is None:
        return
    stop_group(server.proc, timeout)


def stop_group(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM the process group we created, then SIGKILL what is left after timeout."""
    pgid = proc.pid  # start_new_session: the group id is the leader's pid
    if proc.poll() is None:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(pgid, signal.SIGKILL)  # workers that outlived their supervisor
    except ProcessLookupError:
        pass
    try:
        proc.wait(2)
    except subprocess.TimeoutExpired:
        pass
    _started.discard(pgid)


def kill_all_started() -> None:
    """Last resort (atexit / signals): every group this run started and has not stopped."""
    for pgid in list(_started):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _started.discard(pgid)


def track(pgid: int) -> None:
    """A helper process (wrk, py-spy) started in its own session: stopped with the rest."""
    _started.add(pgid)


def untrack(pgid: int) -> None:
    _started.discard(pgid)
