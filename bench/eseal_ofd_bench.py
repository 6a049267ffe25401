"""OFD sealing and verification (issue #16) beside one-page PDF sealing and the signing server's raw SM2 primitive,
in the same run and the same processes (bench.eseal_bench's stack: embedded PostgreSQL/Redis, the signing server
simulator and the simulators' RFC 3161 TSA as their own processes).

The sealing rows call `eseal.signing.sign_request` — what `POST /eseal/v1/documents:sign` runs once the app's
HMAC-SM3 signature is checked (base64 in, seal state rules, signing server, TSA, log rows, base64 out): PDF as
PAdES-T, OFD as a GB/T 33190 §18 seal with a GB/T 38540 SES_Signature carrying an RFC 3161 timestamp. Peak is 8
concurrent loops for a few seconds; p99 is at an offered 50/s (constant arrivals scheduled by the clock).
Verification: 500 different sealed one-page OFDs, every cache emptied, all started at once through
`eseal.signing.verify_file` (what `POST /eseal/v1/verifications` runs after the upload); p99 = the time until the
last answers.
"""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

from bench.context import Context
from bench.eseal_bench import Stack, _closed, _lat, _open, _proc_cpu
from bench.report import Row

SCENARIO = "eseal-ofd"


async def _scenario(ctx: Context, stack: Stack) -> list[Row]:
    from core.boot import prepare
    from core.resources import Resources
    from core.settings import load_settings
    from eseal import checks, keys, signing
    from eseal.models import SignPosition, SignRequest
    from tests.eseal_helpers import bureau, make_ofd, make_pdf

    quick = ctx.options.quick
    settings = load_settings()
    await prepare(settings, seed=False)
    res = await Resources.open(settings)
    rows: list[Row] = []
    secs = 3.0 if quick else 8.0
    try:
        client = keys.signer(res)
        sm2 = await keys.new_key(res, "SM2")
        ctx.progress("eseal-ofd: signing server SM2 primitive (16 concurrent)")
        server0, client0 = _proc_cpu(stack.proc.pid) if stack.proc else 0.0, time.process_time()
        raw_rate, raw_lat = await _closed(lambda: client.sign(sm2.index, b"x" * 64), 16, secs / 2)
        n = max(1, len(raw_lat))
        rows.append(
            Row(
                SCENARIO,
                "signer SM2 sign over HTTP (peer: the raw primitive)",
                raw_rate,
                "op/s",
                peak_latency=_lat(raw_lat),
                server_cpu=(_proc_cpu(stack.proc.pid) - server0) / n if stack.proc else None,
                peer=True,
                notes=[f"client CPU {(time.process_time() - client0) / n * 1000:.2f} ms/op"],
            )
        )

        b = await bureau(res)
        work = stack.var / "work-ofd"
        work.mkdir()
        pos = [SignPosition(seal_code=b.seal.code or "", x=300, y=500)]
        pdf = make_pdf(work / "one.pdf", lines=("特此证明。",)).read_bytes()
        ofd = make_ofd(1, ("特此证明。", "（盖章）"))
        requests = {
            "PDF": SignRequest(document=base64.b64encode(pdf).decode(), seals=pos),
            "OFD": SignRequest(document=base64.b64encode(ofd).decode(), seals=pos),
        }
        peaks: dict[str, float] = {}
        for fmt, request in requests.items():

            async def sign_one(request: SignRequest = request) -> None:
                await signing.sign_request(res, request, b.app_code, "127.0.0.1")

            ctx.progress(f"eseal-ofd: one-page {fmt} sealing, peak and at 50/s")
            await _closed(sign_one, 2, 1.0)  # warm: connections, caches, the TSA certificate check
            c0 = time.process_time()
            for _ in range(20):
                await sign_one()
            cpu_ms = (time.process_time() - c0) / 20 * 1000
            tsa0 = _proc_cpu(stack.sim.pid) if stack.sim else 0.0
            signer0 = _proc_cpu(stack.proc.pid) if stack.proc else 0.0
            peak, lat = await _closed(sign_one, 8, secs)
            tsa_ms = ((_proc_cpu(stack.sim.pid) if stack.sim else 0.0) - tsa0) / max(1, len(lat)) * 1000
            signer_ms = ((_proc_cpu(stack.proc.pid) if stack.proc else 0.0) - signer0) / max(1, len(lat)) * 1000
            at_rate = await _open(sign_one, 50.0, secs)
            peaks[fmt] = peak
            kind = "PAdES-T" if fmt == "PDF" else "GB/T 33190 §18 + GB/T 38540 SES with RFC 3161 timestamp"
            notes = [f"CPU here {cpu_ms:.1f} ms/seal one at a time; signer {signer_ms:.1f}, TSA {tsa_ms:.1f} ms/seal"]
            if fmt == "OFD":
                notes.insert(0, f"{peak / peaks['PDF'] * 100:.0f} % of PDF's peak (target ≥ 80 %, ≥ 100/s)")
            rows.append(
                Row(
                    SCENARIO,
                    f"one-page {fmt} sealing, {kind} (sign_request), one process, 8 concurrent",
                    peak,
                    "sig/s",
                    peak_latency=_lat(lat),
                    offered_rate=50.0,
                    rate_latency=_lat(at_rate),
                    vs_peer=peak / raw_rate,
                    notes=notes,
                )
            )

        burst = 100 if quick else 500
        ctx.progress(f"eseal-ofd: sealing {burst} different one-page OFDs")
        paths: list[Path] = []
        for i in range(burst):
            doc = make_ofd(1, (f"第 {i} 号证明。", "特此证明。"), heading=f"苏州市公安局 证明 {i}")
            sealed = await signing.sign_ofd(res, doc, pos, app_code=b.app_code)
            path = work / f"sealed-{i}.ofd"
            path.write_bytes(sealed)
            paths.append(path)

        async def verify(path: Path) -> float:
            result = await signing.verify_file(res, path, ip="127.0.0.1", doc_name=path.name)
            assert result.valid and result.format == "ofd", result
            return time.perf_counter()

        checks.clear_caches()
        c0 = time.process_time()
        for path in paths[:20]:  # one at a time, caches emptied before each
            checks.clear_caches()
            await verify(path)
        cold_ms = (time.process_time() - c0) / 20 * 1000
        checks.clear_caches()
        ctx.progress(f"eseal-ofd: {burst} different sealed OFDs verified at once")
        c0 = time.process_time()
        t0 = time.perf_counter()
        ends = await asyncio.gather(*(verify(p) for p in paths))
        wall = time.perf_counter() - t0
        rows.append(
            Row(
                SCENARIO,
                f"{burst} different sealed one-page OFDs verified at once (verify_file, caches emptied, one process)",
                burst / wall,
                "verify/s",
                peak_latency=_lat([e - t0 for e in ends]),
                notes=[
                    "p99 = time until the last answers; target ≤ 1.5 s (tender)",
                    f"CPU {(time.process_time() - c0) / burst * 1000:.1f} ms/verification in the burst, "
                    f"{cold_ms:.1f} ms with every cache emptied",
                ],
            )
        )
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
