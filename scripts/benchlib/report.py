"""Results: one table (scenario, req/s, p50, p99, errors, Tenantry/reference), JSON, and deltas."""

from __future__ import annotations

import json
from pathlib import Path

APPS = ("tenantry", "reference")


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _cell(result: dict | None) -> list[str]:
    if result is None:
        return ["-", "-", "-", "-"]
    if "skipped" in result:
        return ["n/a", "", "", ""]
    return [_num(result["rps"], ",.0f"), _num(result["p50_ms"], ".1f"), _num(result["p99_ms"], ".1f"),
            str(result["errors"])]


def ratio(results: dict, scenario: str) -> float | None:
    row = results.get(scenario, {})
    t, r = row.get("tenantry"), row.get("reference")
    if not t or not r or "skipped" in t or "skipped" in r or not r["rps"]:
        return None
    return t["rps"] / r["rps"]


def login_impact(results: dict, app: str) -> float | None:
    """p99 of get_by_id while logins run flat out, divided by its p99 alone."""
    alone = results.get("get_by_id", {}).get(app)
    mixed = results.get("get_by_id+logins", {}).get(app)
    if not alone or not mixed or "skipped" in alone or "skipped" in mixed or not alone["p99_ms"]:
        return None
    return mixed["p99_ms"] / alone["p99_ms"]


def table(doc: dict) -> str:
    results = doc["results"]
    head = ["scenario", "Tenantry req/s", "p50 ms", "p99 ms", "err",
            "reference req/s", "p50 ms", "p99 ms", "err", "T/ref"]
    rows = []
    for scenario in doc["scenarios"]:
        row = results.get(scenario, {})
        r = ratio(results, scenario)
        rows.append([scenario, *_cell(row.get("tenantry")), *_cell(row.get("reference")),
                     "-" if r is None else f"{r:.0%}"])
    widths = [max(len(str(x[i])) for x in [head, *rows]) for i in range(len(head))]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    lines = [fmt(head), "  ".join("-" * w for w in widths), *(fmt([str(c) for c in r]) for r in rows)]
    notes = []
    for app in APPS:
        impact = login_impact(results, app)
        if impact is not None:
            notes.append(f"{app}: get_by_id p99 with logins running = {impact:.2f}x its p99 alone")
    for scenario in doc["scenarios"]:
        for app in APPS:
            res = results.get(scenario, {}).get(app) or {}
            if "skipped" in res:
                notes.append(f"{app} {scenario}: not measured ({res['skipped']})")
            if res.get("runs_rps"):
                notes.append(f"{app} {scenario}: req/s of each run {res['runs_rps']}")
            if res.get("background"):
                bg = res["background"]
                notes.append(f"{app} {scenario}: background logins {bg['rps']:,.1f} req/s, "
                             f"p50 {bg['p50_ms']:.0f} ms, {bg['errors']} errors")
    return "\n".join([header(doc), "", *lines, *(["", *notes] if notes else [])])


def header(doc: dict) -> str:
    s = doc["settings"]
    size = f"{s['tenants']} tenants x {s['items']:,} items ({s['tenants'] * s['items']:,} rows), {s['users']} users/tenant"
    return "\n".join([
        f"Tenantry benchmark  {doc['started_at']}  label={doc.get('label') or '-'}",
        f"machine: {doc['machine']['cpu_count']} cores ({doc['machine']['platform']}), PostgreSQL {doc['machine']['postgres']}",
        f"data: {size}",
        f"load: {s['loadgen']}, {s['connections']} connections ({s['login_connections']} for logins), "
        f"{s['duration']:g}s per scenario after {s['warmup']:g}s warm-up; "
        f"uvicorn --workers {s['workers']}; DB_POOL_SIZE={s['pool_size']}; bcrypt rounds {s['bcrypt_rounds']}"
        + (f"; median of {s['repeat']} runs" if s.get("repeat", 1) > 1 else ""),
        *([f"env overrides: {s['env']}"] if s.get("env") else []),
    ])


def write_json(doc: dict, path: Path) -> None:
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")


def compare(doc: dict, baseline_path: Path) -> str:
    """Tenantry's change per scenario against an earlier --json file (the lead's before/after)."""
    base = json.loads(baseline_path.read_text())
    lines = [f"compared with {baseline_path} ({base.get('label') or base.get('started_at')}):",
             f"  {'scenario':<18} {'req/s before':>12} {'after':>8} {'change':>8}   {'p99 before':>10} {'after':>8}"]
    for scenario in doc["scenarios"]:
        now = (doc["results"].get(scenario) or {}).get("tenantry")
        old = (base.get("results", {}).get(scenario) or {}).get("tenantry")
        if not now or not old or "skipped" in now or "skipped" in old or not old["rps"]:
            continue
        change = now["rps"] / old["rps"] - 1
        lines.append(f"  {scenario:<18} {old['rps']:>12,.0f} {now['rps']:>8,.0f} {change:>+8.0%}   "
                     f"{old['p99_ms']:>10.1f} {now['p99_ms']:>8.1f}")
    return "\n".join(lines)


def scale_table(doc: dict) -> str:
    s = doc["scale"]
    head = ["measurement", *(f"{app} p50 ms" for app in s["apps"]), *(f"{app} p99 ms" for app in s["apps"])]
    rows = []
    for key, label in s["labels"].items():
        cells = [label]
        for stat in ("p50_ms", "p99_ms"):
            for app in s["apps"]:
                value = s["results"].get(app, {}).get(key, {}).get(stat)
                cells.append("-" if value is None else f"{value:.2f}")
        rows.append(cells)
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    lines = [fmt(head), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows), ""]
    for app in s["apps"]:
        res = s["results"].get(app, {})
        rows, page = s["rows"], s["deep_page"]
        for a, b, what in (("small", "big", f"{rows['big']:,} vs {rows['small']:,} rows"),
                           ("deep_page1", "deep_page1000", f"page {page:,} vs page 1")):
            if a in res and b in res and res[a]["p50_ms"]:
                lines.append(f"{app}: {what}: p50 {res[b]['p50_ms'] / res[a]['p50_ms'] - 1:+.0%}")
    m = doc["machine"]
    return f"Tenantry scale benchmark  {doc['started_at']}  ({m['cpu_count']} cores, PostgreSQL {m['postgres']})\n" \
           f"{s['description']}\n\n" + "\n".join(lines)
