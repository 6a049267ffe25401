"""A broadcast to N synthetic users end to end to the simulators, beside Redis's own stream rate in the same run.

Set-up (not measured): embedded PostgreSQL and Redis in a temporary var dir, migrations, the simulators as a
process of their own, N synthetic devices (one per person) written with COPY in the stated channel mix. Measured:
from accepting the message (service.send) until every device's delivery is recorded, with two `szt worker`
processes doing fan-out and delivery. The peer row is Redis's raw XADD + XREADGROUP + XACK rate for as many entries,
from the same Python client (redis.asyncio), pipelined in batches of 1,000: the ceiling of a design that moves each
delivery through one stream.

`SZT_BENCH_PUSH_N` sets N (default 1,000,000; --quick 100,000).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.context import Context
from bench.report import Row
from bench.servers import ROOT, free_port

# Of devices, per channel. Mini programs are a small share: a subscribe message (WeChat) or template message
# (Alipay) goes only to users who granted one (a one-time consent, a form id), which each of theirs here did.
MIX = {"hms": 0.67, "apns": 0.20, "sms": 0.10, "wechat": 0.02, "alipay": 0.01}
MINI = ("wechat", "alipay")
WORKERS = 2
COPY_CHUNK = 50_000


def _rss_peak_kb(pid: int) -> int:
    """VmHWM: the process's peak resident set size."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process and its live children (the simulators' server workers) have used so far
    (/proc/PID/stat utime and stime): which side is the bottleneck when the machine is shared."""
    total = 0.0
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += _cpu_seconds(int(child))
    return total


def _profile_workers(workers: list[subprocess.Popen[bytes]]) -> list[subprocess.Popen[bytes]]:
    """`SZT_BENCH_PUSH_PYSPY=DIR`: sample each worker with py-spy during the broadcast (collapsed stacks in DIR)."""
    from core.settings import load_settings

    out = load_settings().bench_push_pyspy
    if not out:
        return []
    Path(out).mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                "py-spy",
                "record",
                "--pid",
                str(w.pid),
                "--format",
                "raw",
                "--rate",
                "200",
                "--nonblocking",
                "-o",
                str(Path(out) / f"worker-{i}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i, w in enumerate(workers)
    ]


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "szt.cli", *args], cwd=ROOT, env=env, stdout=out, stderr=out)


def _wait_up(url: str) -> None:
    for _ in range(300):
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} not up")


def _sim_totals(sim_port: int) -> dict[str, int]:
    base = f"http://127.0.0.1:{sim_port}"
    return {
        "apns": httpx.post(f"{base}/apns/_sim/counts", json={"tokens": []}).json()["total"],
        "hms": httpx.post(f"{base}/hms/_sim/counts", json={"tokens": []}).json()["total"],
        "sms": httpx.post(f"{base}/sms/_sim/counts", json={"phones": []}).json()["total"],
        "wechat": httpx.get(f"{base}/wechat/_sim/calls").json().get("subscribe", 0),
        "alipay": httpx.get(f"{base}/alipay/_sim/counts").json()["total"],
    }


async def _raw_stream_rate(redis_url: str, n: int) -> float:
    """Entries per second through XADD, XREADGROUP and XACK+XDEL, the same three fields as a delivery entry."""
    from core.redis_client import create_redis

    r = create_redis(redis_url)
    key = f"bench:raw:{uuid.uuid4().hex[:6]}"
    fields = {"m": str(uuid.uuid4()), "d": str(uuid.uuid4()), "p": str(uuid.uuid4())}
    try:
        await r.xgroup_create(key, "g", id="0", mkstream=True)
        t0 = time.perf_counter()
        for i in range(0, n, 1000):
            async with r.pipeline(transaction=False) as pipe:
                for _ in range(min(1000, n - i)):
                    pipe.xadd(key, fields)  # type: ignore[arg-type]
                await pipe.execute()
        done = 0
        while done < n:
            reply: Any = await r.xreadgroup("g", "c", {key: ">"}, count=1000)
            ids = [e[0] for e in reply[0][1]] if reply else []
            if not ids:
                break
            async with r.pipeline(transaction=False) as pipe:
                pipe.xack(key, "g", *ids)
                pipe.xdel(key, *ids)
                await pipe.execute()
            done += len(ids)
        return done / (time.perf_counter() - t0)
    finally:
        await r.delete(key)
        await r.aclose()


async def _mini_users(sim: str, channel: str, k: int) -> list[tuple[str, str]]:
    """k simulated users of one mini program, each with what a message needs at the platform: (address, grant) —
    a WeChat openid with a one-time consent to the broadcast template, an Alipay user id with a form id."""
    from platforms.alipay import ALIPAY_APP_ID
    from platforms.wechat import WECHAT_APPID
    from push.mini_providers import WECHAT_TEMPLATES

    template = WECHAT_TEMPLATES["broadcast"][0]
    gate = asyncio.Semaphore(32)

    async def one(http: httpx.AsyncClient, i: int) -> tuple[str, str]:
        async with gate:
            if channel == "wechat":
                r = await http.post(f"{sim}/wechat/_sim/codes", json={"appid": WECHAT_APPID, "user": f"bench-{i}"})
                openid = r.json()["openid"]
                r = await http.post(
                    f"{sim}/wechat/_sim/subscriptions", json={"openid": openid, "template_id": template, "count": 1}
                )
                r.raise_for_status()
                return openid, template
            r = await http.post(f"{sim}/alipay/_sim/codes", json={"app_id": ALIPAY_APP_ID, "user": f"bench-{i}"})
            user_id = r.json()["user_id"]
            r = await http.post(f"{sim}/alipay/_sim/form-ids", json={"user_id": user_id})
            return user_id, r.json()["form_id"]

    async with httpx.AsyncClient(timeout=30) as http:
        return list(await asyncio.gather(*(one(http, i) for i in range(k))))


async def _populate(res: Any, n: int, tag: str, sim: str) -> dict[str, int]:
    from push.models import phone_context

    counts = {ch: int(n * share) for ch, share in MIX.items()}
    counts["hms"] += n - sum(counts.values())
    plan = [ch for ch, k in counts.items() for _ in range(k)]
    mini = {ch: iter(await _mini_users(sim, ch, counts[ch])) for ch in MINI}
    consents: list[tuple[Any, ...]] = []
    form_ids: list[tuple[Any, ...]] = []
    week = datetime.now(UTC) + timedelta(days=7)
    async with res.db.acquire() as conn:
        for start in range(0, n, COPY_CHUNK):
            rows: list[tuple[Any, ...]] = []
            for i in range(start, min(n, start + COPY_CHUNK)):
                ch, pid = plan[i], uuid.uuid4()
                if ch == "apns":
                    rows.append((uuid.uuid4(), pid, ch, secrets.token_hex(32), None, [tag]))
                elif ch == "hms":
                    rows.append((uuid.uuid4(), pid, ch, f"IQAAAACy0{i:040d}", None, [tag]))
                elif ch in MINI:
                    address, grant = next(mini[ch])
                    device = uuid.uuid4()
                    rows.append((device, pid, ch, address, None, [tag]))
                    if ch == "wechat":
                        consents.append((device, grant, 1))
                    else:
                        form_ids.append((grant, device, week))
                else:
                    phone = f"1{3 + i % 7}{i:09d}"
                    rows.append(
                        (uuid.uuid4(), pid, ch, None, res.fields.encrypt(phone, context=phone_context(pid)), [tag])
                    )
            await conn.copy_records_to_table(
                "devices",
                schema_name="push",
                columns=["id", "person_id", "platform", "token", "phone_enc", "tags"],
                records=rows,
            )
        await conn.copy_records_to_table(
            "mini_consents", schema_name="push", columns=["device_id", "template_id", "remaining"], records=consents
        )
        await conn.copy_records_to_table(
            "mini_form_ids", schema_name="push", columns=["form_id", "device_id", "expires_at"], records=form_ids
        )
        await conn.execute("ANALYZE push.devices")
    return counts


def _delivered(raw: dict[Any, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, v in raw.items():
        key = k.decode() if isinstance(k, bytes) else str(k)
        ch, _, outcome = key.partition(":")
        if outcome in ("delivered", "failed", "invalid", "dead_lettered"):
            out[ch] = out.get(ch, 0) + int(v)
    return out


async def _broadcast(ctx: Context, n: int) -> list[Row]:
    from core.boot import prepare
    from core.embedded import EmbeddedServices
    from core.resources import Resources
    from core.settings import child_environment, export, load_settings, saved_environment
    from push import delivery, service
    from push.models import Broadcast, BroadcastParams, SegmentAudience, SendRequest

    var_dir = Path(tempfile.mkdtemp(prefix="szt-bpush-"))
    restore_environment = saved_environment("database_url", "redis_url", "var_dir")
    embedded = EmbeddedServices(var_dir)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        export(var_dir=var_dir)
        db_url, redis_url = embedded.start("", "")
        sim_port = free_port()
        env = child_environment(
            clean=True,
            extra={"PYTHONUNBUFFERED": "1"},
            database_url=db_url,
            redis_url=redis_url,
            var_dir=var_dir,
            sim_port=sim_port,
            log_level="WARNING",
            workers=1,
            db_pool_max=16,
            worker_metrics_port=0,
        )
        settings = load_settings(env)
        ctx.progress("push: migrating")
        await prepare(settings)
        procs.append(_spawn(["sim-only", "simulators"], env, var_dir / "simulators.log"))
        res = await Resources.open(settings)
        try:
            tag = "bench"
            ctx.progress(f"push: {n:,} synthetic devices by COPY (mini-program users made at the simulators first)")
            t0 = time.monotonic()
            await asyncio.to_thread(_wait_up, f"http://127.0.0.1:{sim_port}/healthz")
            counts = await _populate(res, n, tag, f"http://127.0.0.1:{sim_port}")
            ctx.progress(f"push: populated in {time.monotonic() - t0:.1f} s: {counts}")
            await delivery.ensure_groups(res)
            for i in range(WORKERS):
                procs.append(_spawn(["worker"], env, var_dir / f"worker-{i}.log"))
            workers = procs[-WORKERS:]
            await asyncio.sleep(4)  # the workers import and connect
            spies = _profile_workers(workers)
            req = SendRequest(
                audience=SegmentAudience(tags=[tag]),
                content=Broadcast(BroadcastParams(title="全省通知", body="基准测试广播")),
                channels=["apns", "hms", "sms", "wechat", "alipay", "inbox"],
            )
            ctx.progress("push: broadcast sent")
            sim_proc = procs[0]
            cpu0 = {p.pid: _cpu_seconds(p.pid) for p in procs}
            start = time.monotonic()
            await service.send(res, "bench", req, f"bench-{uuid.uuid4().hex}")
            finished: dict[str, float] = {}
            last_report = start
            limit = 900.0
            while time.monotonic() - start < limit:
                got = _delivered(await res.redis.hgetall(delivery.METRICS_KEY))
                now = time.monotonic()
                for ch, k in counts.items():
                    if ch not in finished and got.get(ch, 0) >= k:
                        finished[ch] = now - start
                if len(finished) == len(counts):
                    break
                if now - last_report > 15:
                    last_report = now
                    ctx.progress(f"push: {sum(got.values()):,} of {n:,} after {now - start:.0f} s")
                for w in workers:
                    if w.poll() is not None:
                        raise RuntimeError(f"worker died: {(var_dir / 'worker-0.log').read_text()[-3000:]}")
                await asyncio.sleep(0.2)
            elapsed = time.monotonic() - start
            for spy in spies:
                spy.send_signal(signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    spy.wait(30)
            if len(finished) < len(counts):
                raise RuntimeError(f"broadcast not finished in {limit:.0f} s: {got}")
            rss = max(_rss_peak_kb(w.pid) for w in workers)
            cpu_workers = sum(_cpu_seconds(w.pid) - cpu0[w.pid] for w in workers)
            cpu_sims = _cpu_seconds(sim_proc.pid) - cpu0[sim_proc.pid]
            ctx.progress(
                f"push: CPU per delivery: workers {cpu_workers / n * 1e6:.0f} µs,"
                f" simulators {cpu_sims / n * 1e6:.0f} µs"
                f" (workers {cpu_workers:.1f} s, simulators {cpu_sims:.1f} s of {time.monotonic() - start:.0f} s)"
            )
            sims = _sim_totals(sim_port)
            delivered_db = await res.db.fetchval("SELECT count(*) FROM push.deliveries WHERE status = 'delivered'")
            ctx.progress(f"push: {delivered_db:,} delivered in {elapsed:.1f} s; simulators {sims}; worker RSS {rss} kB")
            if delivered_db != n:
                raise RuntimeError(f"{delivered_db} of {n} delivered")
            for ch, k in counts.items():
                if sims[ch] < k:
                    raise RuntimeError(f"{ch}: the simulator saw {sims[ch]} of {k}")
            ctx.progress("push: raw Redis stream rate")
            raw = await _raw_stream_rate(redis_url, n)
        finally:
            await res.close()
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(15)
        embedded.stop()
        restore_environment()
        shutil.rmtree(var_dir, ignore_errors=True)
    overall = n / elapsed
    mix = ", ".join(f"{ch} {share:.0%}" for ch, share in MIX.items())
    rows = [
        Row(
            "push broadcast",
            f"end to end to the simulators, {n:,} recipients ({mix}), {WORKERS} workers",
            overall,
            "deliveries/s",
            vs_peer=overall / raw,
            notes=[
                f"peak worker RSS {rss / 1024:.0f} MB; {elapsed:.0f} s in all; CPU per delivery: workers "
                f"{cpu_workers / n * 1e6:.0f} µs, simulators {cpu_sims / n * 1e6:.0f} µs"
            ],
        )
    ]
    labels = {
        "apns": "APNs, per token over HTTP/2",
        "hms": "HarmonyOS, batches of 1,000",
        "sms": "SMS gateway",
        "wechat": "WeChat subscribe messages",
        "alipay": "Alipay template messages (RSA2)",
    }
    for ch, k in counts.items():
        rows.append(
            Row(
                "push broadcast",
                f"  {labels[ch]}: {k:,}",
                k / finished[ch],
                "deliveries/s",
                notes=[f"done after {finished[ch]:.0f} s"],
            )
        )
    rows.append(Row("push broadcast", "Redis XADD + XREADGROUP + XACK (redis.asyncio)", raw, "entries/s", peer=True))
    ctx.note(
        f"push broadcast: one segment message to {n:,} synthetic devices (COPY), fanned out and delivered by {WORKERS} "
        "`szt worker` processes; per-channel rates are that channel's count over the time it took within the mix"
    )
    return rows


def run(ctx: Context) -> list[Row]:
    from core.settings import load_settings

    n = load_settings().bench_push_n or (100_000 if ctx.options.quick else 1_000_000)
    return asyncio.run(_broadcast(ctx, n))
