"""CSV (UTF-8 with BOM, so Excel reads Chinese) and XLSX (openpyxl, write-only) exports of masked rows."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from litestar import Response
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema

from core.clock import SHANGHAI


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value  # no formula injection into a spreadsheet
    return str(value) if not isinstance(value, int | float) else value


async def collect(rows: AsyncIterator[msgspec.Struct], columns: Sequence[tuple[str, str]]) -> list[list[Any]]:
    return [[_cell(getattr(r, key)) for key, _ in columns] async for r in rows]


def _csv(header: list[str], rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return b"\xef\xbb\xbf" + buf.getvalue().encode()


def _xlsx(title: str, header: list[str], rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title[:31])
    ws.append(header)
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class CsvOrXlsx(Operation):
    """An export's OpenAPI operation: the 200 answer is CSV (UTF-8 with BOM) or XLSX, as `format` asks."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse):
            binary = Schema(type=OpenAPIType.STRING, content_media_type=XLSX)
            ok.content = {
                "text/csv": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
                XLSX: OpenAPIMediaType(schema=binary),
            }


async def respond(
    fmt: str, name: str, title: str, columns: Sequence[tuple[str, str]], rows: list[list[Any]]
) -> Response[bytes]:
    header = [label for _, label in columns]
    if fmt == "xlsx":
        body = await asyncio.to_thread(_xlsx, title, header, rows)
        media = XLSX
    else:
        body = await asyncio.to_thread(_csv, header, rows)
        media = "text/csv"  # Litestar adds "; charset=utf-8" to text/* types
    stamp = datetime.now(SHANGHAI).strftime("%Y%m%d%H%M%S")
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.{fmt}"'},
    )
