"""Offboarding: the deletion record that outlives a tenant, and checking an export is current.

`tenantry tenants delete SLUG --yes --export-first FILE` writes the export to FILE, reads its
header back (row counts per table) and deletes in a transaction that first recounts the rows:
if anything was added or removed since the export, nothing is deleted (409), so the file an
operator keeps is known to hold every row that was deleted.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.context import Actor, request_info
from app.core.errors import Conflict, Invalid
from app.export.models import TenantDeletion


class ExportFileError(ValueError):
    """The export file is missing, cut short or not an export of this tenant."""


def check_counts(expected: dict[str, int], actual: dict[str, int]) -> None:
    changed = sorted(t for t in actual if expected.get(t) != actual[t])
    if changed:
        raise Conflict({
            "field": "export",
            "message": f"the tenant changed since the export (tables {', '.join(changed)}): export again",
        })


async def record_deletion(
    session: AsyncSession, tenant: Any, actor: Actor, counts: dict[str, int], export: dict[str, Any] | None
) -> TenantDeletion:
    export = export or {}
    row = TenantDeletion(
        deleted_tenant_id=tenant.id,
        slug=tenant.slug,
        name=tenant.name,
        deleted_by=(actor.label or actor.type)[:100],
        row_counts=counts,
        export_sha256=export.get("sha256"),
        export_taken_at=export.get("exported_at"),
        request_id=request_info().request_id,
    )
    session.add(row)
    await session.flush()
    return row


def read_export_file(path: Path, slug: str) -> dict[str, Any]:
    """{"counts", "sha256", "exported_at"} of a complete export of `slug`, else ExportFileError."""
    digest = hashlib.sha256()
    header = last = None
    rows = 0
    try:
        with path.open("rb") as f:
            for line in f:
                digest.update(line)
                if header is None:
                    header = json.loads(line)
                else:
                    rows += 1
                    last = line
    except (OSError, ValueError) as exc:
        raise ExportFileError(f"cannot read export {path}: {exc}") from exc
    if not header or header.get("type") != "header" or header.get("tenant", {}).get("slug") != slug:
        raise ExportFileError(f"{path} is not an export of tenant {slug!r}")
    try:
        end = json.loads(last or b"{}")
    except ValueError as exc:
        raise ExportFileError(f"{path} is cut short: export again") from exc
    if end.get("type") != "end" or end.get("rows") != rows - 1 or end["rows"] != sum(header["tables"].values()):
        raise ExportFileError(f"{path} is cut short or incomplete: export again")
    return {
        "counts": header["tables"],
        "sha256": digest.hexdigest(),
        "exported_at": datetime.fromisoformat(header["exported_at"]),
    }


def invalid_export(exc: ExportFileError) -> Invalid:
    return Invalid("export", str(exc))
