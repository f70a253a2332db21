"""Optional py-spy profiles of the app's workers during a measured run, summarised in text.

py-spy is not a project dependency: `.venv/bin/pip install py-spy`. Raw (collapsed-stack)
files are kept next to the summary; speedscope.app and flamegraph.pl read them as they are.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from pathlib import Path

from benchlib import servers

# Leaf frames grouped by where their file lives (py-spy prints paths relative to sys.path).
GROUPS = (
    ("sqlalchemy", "sqlalchemy/"), ("asyncpg", "asyncpg/"), ("pydantic", "pydantic"), ("fastapi", "fastapi/"),
    ("starlette", "starlette/"), ("uvicorn/httptools", "uvicorn/"), ("jose/crypto", "jose/"),
    ("jose/crypto", "cryptography/"), ("json", "json/"), ("asyncio", "asyncio/"), ("app code", "app/"),
    ("passlib/bcrypt", "passlib/"), ("typing/stdlib", "typing.py"), ("uuid", "uuid.py"),
)


# Plumbing that wraps every request (ASGI stack, event loop, process start): left out of the
# inclusive list so what remains is the work a lever can remove.
PLUMBING = ("uvicorn/", "starlette/", "multiprocessing/", "asyncio/", "contextlib", "<string>", "<module>",
            "fastapi/middleware/", "fastapi/_body_limit", "fastapi/telemetry", "fastapi/applications",
            "APIRoute", "APIRouter", "_IncludedRouter", "request_response", "get_request_handler")


def executable() -> str | None:
    local = servers.ROOT / ".venv" / "bin" / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


async def record(pids: list[int], seconds: float, out_dir: Path, name: str, rate: int = 100) -> list[Path]:
    """Sample each pid for `seconds` (non-blocking: the workers are never paused)."""
    exe = executable()
    if exe is None:
        raise RuntimeError("py-spy not found: .venv/bin/pip install py-spy")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, procs = [], []
    for pid in pids:
        path = out_dir / f"{name}-{pid}.txt"
        cmd = [exe, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", str(rate),
               "--format", "raw", "--nonblocking", "--output", str(path)]
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE, start_new_session=True)
        servers.track(proc.pid)
        procs.append(proc)
        paths.append(path)
    for proc in procs:
        _, err = await proc.communicate()
        servers.untrack(proc.pid)
        if proc.returncode != 0:
            print(f"[bench] py-spy: {err.decode().strip()[-300:]}")
    return [p for p in paths if p.exists()]


def _group(frame: str) -> str:
    where = frame[frame.rfind("(") + 1:]
    for group, marker in GROUPS:
        if marker in where:
            return group
    return "other"


def _function(frame: str) -> str:
    """'name (path:line)' → 'name (path)': one entry per function, whatever line was running."""
    head, sep, where = frame.rpartition(" (")
    return f"{head}{sep}{where.rsplit(':', 1)[0]})" if sep else frame


def summarize(paths: list[Path], top: int = 20) -> str:
    """Self time by library, top functions by self time, and inclusive time of the app's
    functions and of the library calls between the framework's outer wrappers and the leaves."""
    self_groups: Counter = Counter()
    self_funcs: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = [_function(f) for f in stack.split(";")]
            total += n
            self_groups[_group(frames[-1])] += n
            self_funcs[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
    if not total:
        return "no samples"
    pct = lambda n: f"{n / total:6.1%}"
    lines = [f"{total} samples of on-CPU Python stacks (time in C extensions counts for the Python "
             "line that called them; idle time in the event loop is not sampled)", "", "self time by library:"]
    lines += [f"  {pct(n)}  {group}" for group, n in self_groups.most_common()]
    lines += ["", f"top {top} functions by self time:"]
    lines += [f"  {pct(n)}  {frame}" for frame, n in self_funcs.most_common(top)]
    lines += ["", "app code, inclusive (callees included):"]
    lines += [f"  {pct(n)}  {frame}" for frame, n in inclusive.most_common() if "(app/" in frame][:top]
    lines += ["", f"top {top} library functions by inclusive time (ASGI/event-loop plumbing left out; "
              "SQLAlchemy's greenlet stacks start at their own root, so app code misses them):"]
    lines += [f"  {pct(n)}  {frame}" for frame, n in inclusive.most_common()
              if "(app/" not in frame and not any(p in frame for p in PLUMBING)][:top]
    return "\n".join(lines)
