"""Electronic seals (issue #9), each beside the raw speed of the signing server's primitive in the same run.

In process, on embedded PostgreSQL and Redis, with the signing server simulator and the simulators server (the
RFC 3161 TSA) as their own processes over HTTP (the private-key operations of every row go to the signing server).
The signing rows call `eseal.signing.sign_request` — what `POST /eseal/v1/documents:sign` runs once the app's
HMAC-SM3 signature is checked (base64 PDF in, temp files, seals, log rows, base64 out) — with the default
configuration, so each PAdES seal carries an RFC 3161 timestamp from the TSA (PAdES B-T).
Rows: signer SM2 sign and RSA-2048 sign over HTTP (peers, with the signer process's CPU per request and the
client's); seal making p99; one-page PDF sealing peak in one process and at an offered 50/s; the same peak in two
processes (each like one server worker); one verification of a never-seen document (every cache emptied); 500
different one-page PDFs (PAdES-T and SM2, half each, never verified before) sent at once over HTTP to `szt serve`
with 2 workers (bench.eseal_ofd_bench.verify_burst); a 500 MB PDF sealed in
a child process (peak RSS); signing-log search over 1,000,000 rows; legacy import rate. Where the machine is
shared, the "CPU here … ms" notes (time.process_time around sequential calls) say more than the wall-clock rates.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.report import Latency, Row
from bench.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = "eseal"


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children (granian runs the app in a worker process)."""
    total = 0.0
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout.split()
    for p in [pid, *map(int, children)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _lat(samples: list[float]) -> Latency:
    return Latency.from_samples_us([int(s * 1e6) for s in samples])


async def _closed(fn: Callable[[], Awaitable[Any]], concurrency: int, seconds: float) -> tuple[float, list[float]]:
    """Peak: `concurrency` loops for `seconds`; returns (ops/s, latencies)."""
    lat: list[float] = []
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            await fn()
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return len(lat) / (time.perf_counter() - t0), lat


async def _open(fn: Callable[[], Awaitable[Any]], rate: float, seconds: float) -> list[float]:
    """Constant arrivals scheduled by the clock (not N loops): latency includes any queueing."""
    lat: list[float] = []
    tasks = []
    start = time.perf_counter()
    n = int(rate * seconds)

    async def one(due: float) -> None:
        await fn()
        lat.append(time.perf_counter() - due)

    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    return lat


def big_pdf(path: Path, size: int) -> None:
    """A one-page PDF padded to `size` bytes with an unreferenced stream, written in chunks."""
    chunk = b"\0" * (1 << 20)
    offsets: list[int] = []
    with path.open("wb") as f:

        def obj(body: bytes) -> None:
            offsets.append(f.tell())
            f.write(f"{len(offsets)} 0 obj\n".encode() + body + b"\nendobj\n")

        f.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        obj(b"<< /Type /Catalog /Pages 2 0 R >>")
        obj(b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
        obj(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>")
        text = b"BT /F1 12 Tf 72 760 Td (big document) Tj ET"
        obj(b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream")
        pad = max(0, size - 4096)
        offsets.append(f.tell())
        f.write(b"5 0 obj\n<< /Length %d >>\nstream\n" % pad)
        left = pad
        while left > 0:
            n = min(left, len(chunk))
            f.write(chunk[:n])
            left -= n
        f.write(b"\nendstream\nendobj\n")
        xref = f.tell()
        f.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1))
        for off in offsets:
            f.write(b"%010d 00000 n \n" % off)
        f.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(offsets) + 1, xref))


class Stack:
    """Embedded PostgreSQL/Redis in a temporary var dir, migrated, and the signing server simulator process."""

    def __init__(self) -> None:
        self.var = Path(tempfile.mkdtemp(prefix="szt-bench-eseal-"))
        self.signer_port = free_port()
        self.sim_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.sim: subprocess.Popen[bytes] | None = None
        self.embedded: Any = None
        self.env: dict[str, str] = {}

    def start(self) -> None:
        from core.embedded import EmbeddedServices
        from core.settings import child_environment, export

        # the simulators' port: the RFC 3161 TSA of PAdES seals lives there
        export(var_dir=self.var, signer_port=self.signer_port, sim_port=self.sim_port, log_level="WARNING")
        self.embedded = EmbeddedServices(self.var)
        self.embedded.start("", "")
        self.env = child_environment()
        log = (self.var / "signer.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "szt.cli", "sim-only", "signer"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.sim = subprocess.Popen(
            [sys.executable, "-m", "szt.cli", "sim-only", "simulators"],
            cwd=ROOT,
            env=self.env,
            stdout=(self.var / "sim.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        import httpx

        for port in (self.signer_port, self.sim_port):
            for _ in range(300):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)

    def stop(self) -> None:
        for proc in (self.proc, self.sim):
            if proc is not None:
                proc.terminate()
                proc.wait(15)
        if self.embedded is not None:
            self.embedded.stop()
        shutil.rmtree(self.var, ignore_errors=True)


async def _scenario(ctx: Context, stack: Stack) -> list[Row]:
    import msgspec

    from core.boot import prepare
    from core.resources import Resources
    from core.settings import load_settings
    from eseal import ca, keys, legacy_import, seals, signing
    from eseal.models import SignPosition, SignRequest
    from tests.eseal_helpers import bureau, make_pdf

    quick = ctx.options.quick
    settings = load_settings()
    await prepare(settings, seed=False)
    res = await Resources.open(settings)
    rows: list[Row] = []
    secs = 3.0 if quick else 8.0
    try:
        client = keys.signer(res)
        sm2 = await keys.new_key(res, "SM2")
        rsa = await keys.new_key(res, "RSA2048")
        digest = hashlib.sha256(b"x").digest()
        ctx.progress("eseal: signing server primitives (16 concurrent)")
        for label, fn in (
            ("signer SM2 sign over HTTP (peer)", lambda: client.sign(sm2.index, b"x" * 64)),
            (
                "signer RSA-2048 sign over HTTP (peer)",
                lambda: client.sign(rsa.index, digest=digest, algorithm="RSA-SHA256"),
            ),
        ):
            server0, client0 = _proc_cpu(stack.proc.pid) if stack.proc else 0.0, time.process_time()
            rate, lat = await _closed(fn, 16, secs / 2)
            n = max(1, len(lat))
            server_cpu = (_proc_cpu(stack.proc.pid) - server0) / n if stack.proc else None
            client_ms = (time.process_time() - client0) / n * 1000
            rows.append(
                Row(
                    SCENARIO,
                    label,
                    rate,
                    "op/s",
                    peak_latency=_lat(lat),
                    server_cpu=server_cpu,
                    peer=True,
                    notes=[f"client CPU {client_ms:.2f} ms/op (keep-alive HTTP/1.1 client + HMAC)"],
                )
            )
        sm2_rate, rsa_rate = rows[0].peak, rows[1].peak

        ctx.progress("eseal: seal making")
        b = await bureau(res)
        cert_ids = [b.sm2.id, b.rsa.id]
        make_lat: list[float] = []
        make_cpu = 0.0
        for i in range(20 if quick else 60):
            s = await seals.apply(
                res,
                kind="official",
                name=f"苏州市公安局{i}",
                org_name=f"苏州市公安局{i}",
                region_code="320500",
                cert_ids=cert_ids,
            )
            await seals.review(res, s.id, approve=True, reviewer="bench")
            t0, c0 = time.perf_counter(), time.process_time()
            await seals.make(res, s.id)
            make_lat.append(time.perf_counter() - t0)
            make_cpu += time.process_time() - c0
        rows.append(
            Row(
                SCENARIO,
                "seal making (draw + SES_Seal + SM2 sign), one at a time",
                len(make_lat) / sum(make_lat),
                "seal/s",
                peak_latency=_lat(make_lat),
                vs_peer=(len(make_lat) / sum(make_lat)) / sm2_rate,
                notes=[
                    "target p99 ≤ 50 ms (tender 100 ms)",
                    f"CPU here {make_cpu / len(make_lat) * 1000:.1f} ms/seal (plus the signer's SM2 sign)",
                ],
            )
        )

        work = stack.var / "work"
        work.mkdir()
        src = make_pdf(work / "one.pdf", lines=("特此证明。",))
        pos = [SignPosition(seal_code=b.seal.code or "", x=300, y=500)]
        # What POST /eseal/v1/documents:sign runs once the app's HMAC-SM3 signature is checked: base64 in and out.
        request = SignRequest(document=base64.b64encode(src.read_bytes()).decode(), seals=pos)

        async def sign_one() -> None:
            await signing.sign_request(res, request, b.app_code, "127.0.0.1")

        ctx.progress("eseal: one-page PAdES sealing (sign_request, with RFC 3161 timestamp), peak and at 50/s")
        await _closed(sign_one, 2, 1.0)
        cpu_ms: dict[str, float] = {}
        for label, tsa in (("TSA off", "off"), ("with timestamp", None)):
            res.settings = msgspec.structs.replace(res.settings, tsa_url=tsa)
            await sign_one()
            c0 = time.process_time()
            for _ in range(20):  # one at a time: CPU per seal in this process
                await sign_one()
            cpu_ms[label] = (time.process_time() - c0) / 20 * 1000
        tsa0 = _proc_cpu(stack.sim.pid) if stack.sim else 0.0
        server0 = _proc_cpu(stack.proc.pid) if stack.proc else 0.0
        peak, lat = await _closed(sign_one, 8, secs)
        tsa_ms = ((_proc_cpu(stack.sim.pid) if stack.sim else 0.0) - tsa0) / max(1, len(lat)) * 1000
        signer_ms = ((_proc_cpu(stack.proc.pid) if stack.proc else 0.0) - server0) / max(1, len(lat)) * 1000
        at_rate = await _open(sign_one, 50.0, secs)
        ctx.progress(
            f"eseal: PAdES CPU here {cpu_ms['with timestamp']:.1f} ms/seal one at a time "
            f"({cpu_ms['TSA off']:.1f} with TSA_URL=off); signer {signer_ms:.1f}, TSA {tsa_ms:.1f} ms/seal at peak"
        )
        rows.append(
            Row(
                SCENARIO,
                "one-page PDF sealing, PAdES-T (sign_request), one process, 8 concurrent",
                peak,
                "sig/s",
                peak_latency=_lat(lat),
                offered_rate=50.0,
                rate_latency=_lat(at_rate),
                vs_peer=peak / rsa_rate,
                notes=[
                    f"CPU here {cpu_ms['with timestamp']:.1f} ms/seal one at a time "
                    f"({cpu_ms['TSA off']:.1f} with TSA_URL=off); signer {signer_ms:.1f}, TSA {tsa_ms:.1f} ms/seal",
                ],
            )
        )

        ctx.progress("eseal: one-page PAdES sealing in 2 processes (as 2 server workers)")
        env = {**stack.env, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url}
        env.pop("TSA_URL", None)
        start_at = time.time() + 8.0
        children = [
            subprocess.Popen(  # noqa: ASYNC220 - started together, waited for in threads
                [
                    sys.executable,
                    "-m",
                    "bench.eseal_signproc",
                    str(src),
                    b.seal.code or "",
                    b.app_code,
                    str(start_at),
                    str(secs),
                    "4",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(2)
        ]
        outs = [await asyncio.to_thread(c.communicate, timeout=300) for c in children]
        multi_lat: list[float] = []
        multi_rate, multi_cpu = 0.0, 0.0
        for child, (out_b, err_b) in zip(children, outs, strict=True):
            if child.returncode != 0:
                raise RuntimeError(err_b.decode()[-3000:])
            got = json.loads(out_b.decode().strip().splitlines()[-1])
            multi_lat += got["latencies"]
            multi_rate += len(got["latencies"]) / got["wall"]
            multi_cpu += got["cpu"]
        rows.append(
            Row(
                SCENARIO,
                "one-page PDF sealing, PAdES-T (sign_request), 2 processes × 4 concurrent",
                multi_rate,
                "sig/s",
                peak_latency=_lat(multi_lat),
                vs_peer=multi_rate / rsa_rate,
                notes=[
                    "target ≥ 100/s; each process like one server worker (SZT_WORKERS=2)",
                    f"CPU in the sealing processes {multi_cpu / max(1, len(multi_lat)) * 1000:.1f} ms/seal",
                ],
            )
        )

        ctx.progress("eseal: verification of a new document, one at a time")
        signed = work / "signed.pdf"
        await signing.sign_file(res, src, signed, pos, app_code=b.app_code)
        trust = await signing.trust(res)
        from eseal import pdfverify

        with signed.open("rb") as signed_pdf:
            await signing.seal_states(res, trust, pdfverify.seal_codes(pdfverify.parse(signed_pdf)))

        async def verify_one() -> float:
            t0 = time.perf_counter()
            with signed.open("rb") as f:
                result = await pdfverify.verify_stream(f, trust)
            assert result.valid
            return time.perf_counter() - t0

        cold_lat: list[float] = []
        c0 = time.process_time()
        for _ in range(20):  # every cache emptied first: what a document seen for the first time costs
            pdfverify.clear_caches()
            cold_lat.append(await verify_one())
        cold_cpu_ms = (time.process_time() - c0) / len(cold_lat) * 1000
        rows.append(
            Row(
                SCENARIO,
                "verification of a new document, caches emptied, one at a time",
                len(cold_lat) / sum(cold_lat),
                "verify/s",
                peak_latency=_lat(cold_lat),
                notes=[f"CPU {cold_cpu_ms:.1f} ms/verification"],
            )
        )

        burst = 100 if quick else 500
        ctx.progress(f"eseal: sealing {burst} different one-page PDFs, PAdES-T and SM2 half each")
        from bench.eseal_ofd_bench import WARM_DOCS, verify_burst

        docs: list[tuple[str, bytes]] = []
        for i in range(burst + WARM_DOCS):
            one = make_pdf(work / f"doc-{i}.pdf", lines=(f"第 {i} 号证明。", "特此证明。"))
            algorithm = "pades" if i % 2 == 0 else "sm2"
            out = work / f"doc-{i}-{algorithm}.pdf"
            await signing.sign_file(res, one, out, pos, app_code=b.app_code, algorithm=algorithm)
            docs.append((out.name, out.read_bytes()))
            one.unlink()
            out.unlink()
        warm, docs = docs[:WARM_DOCS], docs[WARM_DOCS:]
        ctx.progress(f"eseal: {burst} different sealed PDFs sent at once to POST /eseal/v1/verifications (2 workers)")
        burst_lat, wall, errors, gen_cpu, server_ms, samples = verify_burst(ctx, stack, settings, docs, warm)
        for sample in samples:
            ctx.progress(f"  unexpected answer {sample}")
        rows.append(
            Row(
                SCENARIO,
                f"{burst} different sealed one-page PDFs (PAdES-T and SM2, half each) verified at once, "
                "POST /eseal/v1/verifications, 2 workers",
                burst / wall,
                "verify/s",
                peak_latency=burst_lat,
                server_cpu=server_ms / 1000,
                gen_cpu_peak=gen_cpu / wall if gen_cpu is not None else None,
                errors=errors,
                notes=[
                    f"all different, never verified before; {errors} errors; p99 from the common send; "
                    "target: all within 1 s",
                    f"server CPU {server_ms:.1f} ms/verification (HTTP, upload, log row)",
                ],
            )
        )

        ctx.progress("eseal: large PDF sealed in a child process")
        size = (50 if quick else 500) * 1024 * 1024
        big = work / "big.pdf"
        big_pdf(big, size)
        env = {**stack.env, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url}
        t0 = time.perf_counter()
        proc = subprocess.run(  # noqa: ASYNC221 - nothing else runs meanwhile
            [
                sys.executable,
                "-m",
                "bench.eseal_bigpdf",
                str(big),
                str(work / "big-signed.pdf"),
                b.seal.code or "",
                b.app_code,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        took = time.perf_counter() - t0
        rss_mb = int(proc.stdout.split()[0]) / 1024
        rows.append(
            Row(
                SCENARIO,
                f"{size >> 20} MB PDF sealed (PAdES), child process",
                1 / took,
                "doc/s",
                notes=[f"peak RSS {rss_mb:.0f} MB (target ≤ 256 MB), {took:.1f} s"],
            )
        )
        big.unlink(missing_ok=True)
        (work / "big-signed.pdf").unlink(missing_ok=True)

        ctx.progress("eseal: signing-log search over many rows")
        n_logs = 100_000 if quick else 1_000_000
        batch = 100_000
        for first in range(0, n_logs, batch):  # in batches: one statement per 100,000 rows
            await res.db.execute(
                """INSERT INTO eseal.logs (seq, at, kind, actor, action, seal_code, cert_serial, doc_name, doc_hash,
                                           result, ip, detail, prev_hash, hash)
                   SELECT 1000000000 + g, now() - (g || ' seconds')::interval, 'sign', 'app-' || (g % 50),
                          'sign', 'S' || (g % 5000), (g % 20000)::text, 'doc' || g || '.pdf', md5(g::text), 'ok',
                          '10.0.' || (g % 250) || '.1', '{}', '\\x00', '\\x00'
                   FROM generate_series($1::bigint, $2::bigint) AS g""",
                first + 1,
                min(first + batch, n_logs),
                timeout=600,
            )
        await res.db.execute("ANALYZE eseal.logs", timeout=600)
        from eseal import logs as elogs

        queries = [
            {"kind": "sign", "seal_code": "S1234"},
            {"kind": "sign", "actor": "app-7"},
            {"doc_hash": hashlib.md5(b"4242").hexdigest()},
            {"kind": "sign", "cert_serial": "777"},
            {"kind": "sign"},
        ]
        search_lat: list[float] = []
        for i in range(250):
            t0 = time.perf_counter()
            page = await elogs.search(res.db, queries[i % len(queries)], limit=50)
            search_lat.append(time.perf_counter() - t0)
            assert page.items
        rows.append(
            Row(
                SCENARIO,
                f"signing-log search over {n_logs:,} rows (5 filter kinds)",
                len(search_lat) / sum(search_lat),
                "query/s",
                peak_latency=_lat(search_lat),
                notes=["target p99 ≤ 50 ms (tender 2 s)"],
            )
        )

        ctx.progress("eseal: legacy import")
        from PIL import Image

        imp = work / "import"
        imp.mkdir()
        n_imp = 100 if quick else 400
        scan = Image.new("RGB", (400, 400), (250, 248, 240))
        from eseal import impression

        ink = Image.open(io.BytesIO(impression.render("苏州市公安局", "1")))
        scan.paste(Image.new("RGB", ink.size, (190, 30, 40)), (0, 0), ink)
        scan.save(imp / "scan.jpg", "JPEG")
        with (imp / "seals.csv").open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["code", "kind", "name", "org_name", "region_code", "image"])
            for i in range(n_imp):
                w.writerow(
                    [f"LEGACY{i:08d}", "个人章" if i % 9 else "公章", f"印章{i}", "苏州市公安局", "320500", "scan.jpg"]
                )
        report = await legacy_import.run(res, imp, progress=None)
        rows.append(
            Row(
                SCENARIO,
                f"legacy import ({n_imp} JPG scans cleaned + rows)",
                report.rate,
                "seal/s",
                notes=[f"110,519 seals ≈ {110_519 / report.rate / 60:.0f} min at this rate"],
            )
        )
        del ca
    finally:
        await res.close()
    return rows


def run(ctx: Context) -> list[Row]:
    stack = Stack()
    try:
        stack.start()
        return asyncio.run(_scenario(ctx, stack))
    finally:
        stack.stop()
