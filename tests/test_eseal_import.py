"""Legacy import: images + CSV, rejects reported, an interrupted run resumed (through `szt eseal import`)."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from core.resources import Resources
from eseal import ca, impression, legacy_import, repo, seals
from tests.harness import ROOT, Stack


def _scan(path: Path, name: str, fmt: str) -> None:
    paper = Image.new("RGB", (240, 240), (250, 248, 240))
    ink = Image.open(io.BytesIO(impression.render(name, size_px=240)))
    paper.paste(Image.new("RGB", ink.size, (190, 30, 40)), (0, 0), ink)
    paper.save(path, fmt)


async def test_import_reports_rejects_and_resumes(res: Resources, stack: Stack, tmp_path: Path) -> None:
    rows = []
    for i, fmt in enumerate(["JPEG", "PNG", "GIF", "BMP", "JPEG", "PNG"]):
        name = f"seal{i}.{fmt.lower()}"
        _scan(tmp_path / name, f"苏州市公安局{i}号", fmt)
        rows.append(
            [
                f"LEGACY-{os.getpid()}-{i}",
                "公章" if i % 2 else "personal",
                f"印章{i}",
                "苏州市公安局",
                "320500",
                name,
                "2030-12-31",
            ]
        )
    rows.append([f"LEGACY-{os.getpid()}-0", "公章", "重复", "苏州市公安局", "320500", "seal0.jpeg", ""])  # dup code
    rows.append([f"LEGACY-{os.getpid()}-9", "圆章", "x", "苏州市公安局", "320500", "seal1.png", ""])  # bad kind
    rows.append([f"LEGACY-{os.getpid()}-10", "公章", "x", "苏州市公安局", "320500", "missing.png", ""])
    rows.append([f"LEGACY-{os.getpid()}-11", "公章", "x", "苏州市公安局", "320500", "../etc.png", ""])
    (tmp_path / "notimage.png").write_bytes(b"GIF89a broken")
    rows.append([f"LEGACY-{os.getpid()}-12", "公章", "x", "苏州市公安局", "320500", "notimage.png", ""])
    with (tmp_path / "seals.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["code", "kind", "name", "org_name", "region_code", "image", "valid_to"])
        writer.writerows(rows)

    first = await legacy_import.run(res, tmp_path, progress=None, limit=4)  # "interrupted" after 4 lines
    assert (first.imported, first.rejected) == (4, 0)
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "szt.cli", "eseal", "import", str(tmp_path)],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 imported, 5 rejected" in proc.stdout and "4 done earlier" in proc.stdout, proc.stdout
    assert "/7" in proc.stderr  # the progress bar counted the 7 remaining lines
    with (tmp_path / "rejects.csv").open(encoding="utf-8") as f:
        reasons = {int(r["line"]): r["reason"] for r in csv.DictReader(f)}
    assert sorted(reasons) == [8, 9, 10, 11, 12]
    assert "already exists" in reasons[8] and "kind" in reasons[9] and "no file" in reasons[10]
    assert "no file" in reasons[11] and "image" in reasons[12]

    again = await legacy_import.run(res, tmp_path, progress=None)  # nothing left to do
    assert (again.imported, again.rejected, again.skipped) == (0, 0, 11)

    # An imported seal keeps its code and impression; binding a certificate and making it builds its SES_Seal.
    row = await repo.seal_by_code(res.db, f"LEGACY-{os.getpid()}-1")
    assert row is not None and row["status"] == "approved" and row["imported"] and row["kind"] == "official"
    cert = await ca.apply(res, subject_kind="org", subject_name="苏州市公安局", real_name_verified=True)
    await seals.bind_certificate(res, row["id"], cert.id, actor="admin")
    made = await seals.make(res, row["id"])
    assert made.code == f"LEGACY-{os.getpid()}-1" and made.status == "made"
    after = await repo.seal_by_code(res.db, made.code)
    assert after is not None and bytes(after["image_png"]) == bytes(row["image_png"])
