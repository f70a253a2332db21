#!/usr/bin/env python3
"""Benchmark Tenantry against a raw-asyncpg reference app on the same data, same load, same machine.

    python3 scripts/bench.py                      # 100 tenants x 1,000 items, every scenario, 15 s each
    python3 scripts/bench.py --tenants 10 --items 200 --duration 5 --warmup 1 --scenarios get_by_id,list_20
    python3 scripts/bench.py --json before.json   # ... change something ...
    python3 scripts/bench.py --compare before.json --json after.json
    python3 scripts/bench.py --scale              # list latency at 10k vs 1M rows, page 1 vs page 1,000

Seeds a dedicated database (`tenantry_bench`, reused while its size matches) on the embedded
PostgreSQL, or on the server named by --admin-url / DATABASE_ADMIN_URL (a superuser URL); starts
each app with uvicorn on a free port in 19000-19999, checks that cross-tenant requests are 404,
drives it with wrk (or the built-in asyncio generator), and stops everything it started.
Importable: `main(argv)` runs it (a development tool: not part of the installed package or image).
"""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
for _path in (str(ROOT), str(SCRIPTS)):
    if _path not in sys.path:
        sys.path.insert(0, _path)


def _csv(choices):
    def parse(value: str) -> list[str]:
        items = [v.strip() for v in value.split(",") if v.strip()]
        bad = [v for v in items if v not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {', '.join(choices)}")
        return items
    return parse


def _env_pair(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError("expected KEY=VALUE")
    return key, val


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action):
        if action.default in (None, False, []) or action.help is None:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    from benchlib.scenarios import SCENARIOS

    p = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0],
                                formatter_class=_Formatter)
    data = p.add_argument_group("data")
    data.add_argument("--tenants", type=int, default=100, help="tenants to seed")
    data.add_argument("--items", type=int, default=1000, help="items per tenant")
    data.add_argument("--users", type=int, default=5, help="users per tenant (logins spread over them)")
    data.add_argument("--reseed", action="store_true", help="seed again even if the database matches")
    data.add_argument("--database", default="tenantry_bench", help="database name (created if missing)")
    data.add_argument("--admin-url", help="superuser URL (default: DATABASE_ADMIN_URL, else a dedicated embedded "
                      "cluster in .tenantry/bench-pgdata with max_connections=300)")
    data.add_argument("--shared-embedded", action="store_true",
                      help="use the dev embedded server (.tenantry/pgdata; 100 connections shared with tests)")
    data.add_argument("--bcrypt-rounds", type=int, help="password hash cost (default: the app's setting)")

    load = p.add_argument_group("load")
    load.add_argument("--scenarios", type=_csv(list(SCENARIOS)), default=list(SCENARIOS),
                      help="comma-separated subset")
    load.add_argument("--apps", type=_csv(["tenantry", "reference"]), default=["tenantry", "reference"],
                      help="which apps to measure")
    load.add_argument("--duration", type=float, default=15.0, help="measured seconds per scenario and app")
    load.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each measurement")
    load.add_argument("--connections", type=int, default=64, help="concurrent keep-alive connections")
    load.add_argument("--login-connections", type=int, default=8,
                      help="connections for login load (bcrypt-bound: more only queue longer)")
    load.add_argument("--flood-connections", type=int, default=100,
                      help="anonymous login clients of the login_flood scenario")
    load.add_argument("--loadgen", choices=["auto", "wrk", "builtin"], default="auto",
                      help="auto: wrk when installed, else the built-in asyncio generator")
    load.add_argument("--wrk-threads", type=int, default=2, help="wrk -t")
    load.add_argument("--timeout", type=float, default=10.0, help="per-request timeout (wrk)")
    load.add_argument("--order", choices=["interleaved", "grouped"], default="interleaved",
                      help="interleaved: restart the apps per scenario, alternating; grouped: one start per app")
    load.add_argument("--repeat", type=int, default=1,
                      help="measure each scenario N times (rounds), report the median run: steadier on a busy machine")

    server = p.add_argument_group("servers")
    server.add_argument("--workers", type=int, default=2, help="uvicorn workers per app")
    server.add_argument("--pool-size", type=int, default=64, help="DB_POOL_SIZE for both apps")
    server.add_argument("--env", type=_env_pair, action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for both apps (repeatable), e.g. a setting under test")

    out = p.add_argument_group("output")
    out.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    out.add_argument("--compare", type=Path, metavar="FILE", help="print Tenantry's change against an earlier --json")
    out.add_argument("--label", help="a note stored with the results (e.g. the lever under test)")
    out.add_argument("--no-statements", dest="statements", action="store_false",
                     help="skip counting statements per request (pg_stat_statements) before measuring")
    out.add_argument("--show-statements", action="store_true", help="print each endpoint's statements")
    out.add_argument("--profile", type=Path, metavar="DIR", help="py-spy the workers during each measurement")
    out.add_argument("--profile-apps", type=_csv(["tenantry", "reference"]), default=["tenantry"],
                     help="which apps --profile samples")
    out.add_argument("--work-dir", type=Path, default=ROOT / ".tenantry" / "bench",
                     help="server logs and generated wrk scripts")

    scale = p.add_argument_group("scale mode")
    scale.add_argument("--scale", action="store_true", help="run the scale measurements instead")
    scale.add_argument("--scale-total", type=int, default=1_000_000, help="rows in the large database")
    scale.add_argument("--scale-requests", type=int, default=400, help="sequential requests per figure")
    scale.add_argument("--scale-page", type=int, default=1000, help="the deep page reached by cursor")
    return p


def _on_signal(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _run(coro):
    try:
        import uvloop
    except ImportError:
        import asyncio

        return asyncio.run(coro)
    import asyncio

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def main(argv: list[str] | None = None) -> int:
    os.chdir(ROOT)  # the apps and the harness read the same .env
    from benchlib import report, servers

    args = build_parser().parse_args(argv)
    args.env = dict(args.env)
    if args.profile:
        args.profile = args.profile.resolve()
    atexit.register(servers.kill_all_started)
    previous = signal.signal(signal.SIGTERM, _on_signal)
    try:
        if args.scale:
            from benchlib import scale

            doc = _run(scale.run(args))
            print()
            print(report.scale_table(doc))
        else:
            from benchlib import runner

            doc = _run(runner.run(args))
            runner.print_report(doc, args)
        if args.json:
            report.write_json(doc, args.json)
            print(f"\nresults written to {args.json}")
        return 0
    except KeyboardInterrupt:
        print("\n[bench] interrupted; stopping everything this run started", file=sys.stderr)
        return 130
    finally:
        servers.kill_all_started()
        signal.signal(signal.SIGTERM, previous)


def _ensure_venv() -> None:
    """Run from a fresh clone with any python3: install the project into .venv, then re-exec there."""
    venv = ROOT / ".venv"
    if Path(sys.prefix).resolve() == venv.resolve():
        return
    from _bootstrap import ensure_venv

    ensure_venv()
    python = str(venv / "bin" / "python")
    os.execv(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]])


if __name__ == "__main__":
    _ensure_venv()
    raise SystemExit(main())
