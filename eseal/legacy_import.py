"""Legacy seal import: `szt eseal import DIR` reads DIR/seals.csv and the impression images it names.

CSV columns (UTF-8, header row): code, kind (official|contract|finance|personal, or 公章|合同章|财务章|个人章),
name, org_name, region_code, image (file name under DIR), valid_to (YYYY-MM-DD, optional). Each good row becomes a
seal in state `approved` that keeps its legacy code and its cleaned impression; binding a certificate and `make`
then build its SES_Seal. Every line handled is remembered (eseal.import_rows), so a second run resumes where the
first stopped; rejected lines with their reason go to DIR/rejects.csv.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from core import regions
from core.resources import Resources
from eseal import impression, repo

KINDS = {
    "official": "official",
    "contract": "contract",
    "finance": "finance",
    "personal": "personal",
    "公章": "official",
    "合同章": "contract",
    "合同专用章": "contract",
    "财务章": "finance",
    "财务专用章": "finance",
    "个人章": "personal",
    "个人签名章": "personal",
}
CODE_RE = re.compile(r"^[0-9A-Za-z-]{6,40}$")
CONCURRENCY = 4


@dataclass
class ImportReport:
    total: int
    imported: int
    rejected: int
    skipped: int  # handled by an earlier run
    seconds: float

    @property
    def rate(self) -> float:
        done = self.imported + self.rejected
        return done / self.seconds if self.seconds else 0.0


def _progress(done: int, total: int, started: float) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    rate = done / max(time.monotonic() - started, 1e-6)
    sys.stderr.write(f"\r[{'#' * filled}{' ' * (width - filled)}] {done}/{total}  {rate:,.0f}/s ")
    sys.stderr.flush()


def _validate(row: dict[str, str], directory: Path) -> tuple[dict[str, object], bytes] | str:
    code = (row.get("code") or "").strip()
    if not CODE_RE.match(code):
        return "code: 6-40 letters, digits or -"
    kind = KINDS.get((row.get("kind") or "").strip())
    if kind is None:
        return f"kind: unknown '{row.get('kind')}'"
    name, org = (row.get("name") or "").strip(), (row.get("org_name") or "").strip()
    if not name or len(name) > 40 or not org or len(org) > 40:
        return "name/org_name: 1-40 characters"
    region = (row.get("region_code") or regions.PROVINCE_CODE).strip()
    if not (len(region) == 6 and region.isdigit()):
        return "region_code: six digits"
    image_name = (row.get("image") or "").strip()
    path = (directory / image_name).resolve()
    if not image_name or directory.resolve() not in path.parents or not path.is_file():
        return f"image: no file '{image_name}'"
    valid_to = dt.datetime.now(dt.UTC) + dt.timedelta(days=365 * 5)
    if (row.get("valid_to") or "").strip():
        try:
            valid_to = dt.datetime.strptime(row["valid_to"].strip(), "%Y-%m-%d").replace(tzinfo=dt.UTC)
        except ValueError:
            return "valid_to: YYYY-MM-DD"
    try:
        png = impression.clean_upload(path.read_bytes())
    except ValueError as exc:
        return f"image: {exc}"
    values: dict[str, object] = {
        "code": code,
        "kind": kind,
        "name": name,
        "org_name": org,
        "region_code": region,
        "valid_to": valid_to,
    }
    return values, png


async def _one(res: Resources, source: str, line: int, row: dict[str, str], directory: Path) -> bool:
    checked = await asyncio.to_thread(_validate, row, directory)  # image cleaning is CPU work: off the loop
    if isinstance(checked, str):
        await repo.import_mark(res.db, source, line, "rejected", checked, None)
        return False
    values, png = checked
    async with res.db.acquire() as conn, conn.transaction():
        try:
            seal = await repo.insert_seal(
                conn,
                id=uuid.uuid4(),
                shape="upload",
                status="approved",
                image_png=png,
                valid_from=dt.datetime.now(dt.UTC).replace(microsecond=0),
                applicant="legacy-import",
                imported=True,
                **values,
            )
        except asyncpg.UniqueViolationError:
            await repo.import_mark(res.db, source, line, "rejected", f"code {values['code']} already exists", None)
            return False
        await repo.import_mark(conn, source, line, "imported", "", seal["id"])
    return True


async def run(
    res: Resources,
    directory: Path,
    *,
    progress: Callable[[int, int, float], None] | None = _progress,
    limit: int | None = None,
) -> ImportReport:
    csv_path = directory / "seals.csv"
    source = str(csv_path.resolve())
    with csv_path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    done_before = await repo.import_done(res.db, source)
    todo = [(i, r) for i, r in enumerate(rows, start=2) if i not in done_before]  # line 1 is the header
    if limit is not None:
        todo = todo[:limit]
    started = time.monotonic()
    imported = rejected = finished = 0
    queue: asyncio.Queue[tuple[int, dict[str, str]]] = asyncio.Queue()
    for item in todo:
        queue.put_nowait(item)

    async def worker() -> None:
        nonlocal imported, rejected, finished
        while not queue.empty():
            line, row = queue.get_nowait()
            if await _one(res, source, line, row, directory):
                imported += 1
            else:
                rejected += 1
            finished += 1
            if progress and (finished % 50 == 0 or finished == len(todo)):
                progress(finished, len(todo), started)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    if progress:
        sys.stderr.write("\n")
    rejects = await repo.import_rejects(res.db, source)
    with (directory / "rejects.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "reason"])
        writer.writerows((r["line"], r["reason"]) for r in rejects)
    return ImportReport(
        total=len(rows),
        imported=imported,
        rejected=rejected,
        skipped=len(rows) - len(todo) if limit is None else len(done_before),
        seconds=time.monotonic() - started,
    )
