"""Export test helpers: run an export into memory and parse it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from app.export.service import stream_export
from tests.audit.conftest import cli, owner_engine, superuser_engine  # noqa: F401  (fixtures)


@dataclass
class Parsed:
    header: dict
    rows: dict[str, list[dict]] = field(default_factory=dict)
    end: dict | None = None
    text: str = ""


def parse(data: bytes) -> Parsed:
    lines = [json.loads(line) for line in data.splitlines()]
    parsed = Parsed(header=lines[0], text=data.decode())
    assert parsed.header["type"] == "header"
    for line in lines[1:]:
        if line["type"] == "row":
            parsed.rows.setdefault(line["table"], []).append(line["row"])
        else:
            assert line["type"] == "end" and parsed.end is None
            parsed.end = line
    return parsed


async def export_bytes(engine, tenant_id, **kw) -> bytes:
    return b"".join([chunk async for chunk in stream_export(engine, tenant_id, **kw)])
