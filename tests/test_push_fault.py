"""Push under faults with real `szt worker` processes: one is killed with SIGKILL in the middle of a 10,000-recipient
send (APNs + HarmonyOS + SMS) while APNs has an outage and HarmonyOS throttles; another finishes. Every recipient
shows exactly one delivery at the simulators."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from core.resources import Resources
from identity import clients
from push import service
from tests.harness import ROOT, free_port

N_APNS, N_HMS, N_SMS = 4000, 4000, 2000


def _worker(
    var_dir: Path, name: str, metrics_port: int, extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SZT_LOG_LEVEL": "INFO",
        "SZT_PUSH_CLAIM_IDLE_MS": "1500",  # take over a dead consumer's stream entries after 1.5 s
        "SZT_PUSH_SENDING_TIMEOUT": "4",  # and its in-flight pairs after 4 s (its heartbeat lasts 3 s)
        "SZT_PUSH_RECOVER_EVERY": "1",
        "SZT_WORKER_HEARTBEAT": "1",
        "SZT_WORKER_METRICS_PORT": str(metrics_port),
        **(extra or {}),
    }
    log = (var_dir / f"worker-{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "szt.cli", "worker"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )


def _counts(sim_url: str, sim: str, key: str, items: list[str]) -> dict[str, Any]:
    r = httpx.post(f"{sim_url}/{sim}/_sim/counts", json={key: items}, timeout=30)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _population(res: Resources, tag: str) -> tuple[list[str], list[str], list[str]]:
    """10,000 people with one address each, inserted in bulk (phones encrypted as the service does)."""
    a_tokens = [secrets.token_hex(32) for _ in range(N_APNS)]
    h_tokens = ["IQAAAACy0" + secrets.token_urlsafe(48) for _ in range(N_HMS)]
    phones = list(dict.fromkeys(f"1{secrets.choice('3456789')}{secrets.randbelow(10**9):09d}" for _ in range(N_SMS)))
    people = [uuid.uuid4() for _ in range(N_APNS + N_HMS + len(phones))]
    rows: list[tuple[Any, ...]] = []
    for i, pid in enumerate(people):
        if i < N_APNS:
            rows.append((uuid.uuid4(), pid, "apns", a_tokens[i], None, [tag]))
        elif i < N_APNS + N_HMS:
            rows.append((uuid.uuid4(), pid, "hms", h_tokens[i - N_APNS], None, [tag]))
        else:
            phone = phones[i - N_APNS - N_HMS]
            rows.append(
                (uuid.uuid4(), pid, "sms", None, res.fields.encrypt(phone, context=service.phone_context(pid)), [tag])
            )
    async with res.db.acquire() as conn:
        await conn.copy_records_to_table(
            "devices",
            schema_name="push",
            columns=["id", "person_id", "platform", "token", "phone_enc", "tags"],
            records=rows,
        )
    return a_tokens, h_tokens, phones


async def test_a_worker_killed_mid_send_loses_and_doubles_nothing(
    res: Resources, http: httpx.Client, sim_url: str, var_dir: Path
) -> None:
    made = await clients.create(res, client_id=f"biz-{uuid.uuid4().hex[:8]}", name="应急广播", kind="business")
    assert made.client_secret
    auth = httpx.BasicAuth(made.client.client_id, made.client_secret)
    tag = f"kill{secrets.token_hex(3)}"
    a_tokens, h_tokens, phones = await _population(res, tag)
    total = N_APNS + N_HMS + len(phones)
    base_apns = _counts(sim_url, "apns", "tokens", [])["total"]
    # Faults: an APNs outage (the first 400 sends answer 503 Retry-After 1), HarmonyOS throttles (429 Retry-After 1),
    # and the SMS gateway fails its first 100 sends.
    httpx.post(f"{sim_url}/apns/_sim/fail", json={"count": 400, "status": 503, "retry_after": 1})
    httpx.post(f"{sim_url}/hms/_sim/fail", json={"count": 1, "status": 429, "retry_after": 1})
    httpx.post(f"{sim_url}/sms/_sim/fail", json={"count": 100, "status": 503})
    body = {
        "audience": {"type": "segment", "tags": [tag]},
        "content": {"template": "broadcast", "params": {"title": "暴雨预警", "body": "今夜有大暴雨，请减少外出。"}},
        "channels": ["apns", "hms", "sms"],
        "priority": "high",
    }
    r = http.post("/push/v1/messages", json=body, auth=auth, headers={"Idempotency-Key": f"storm-{tag}"})
    assert r.status_code == 202, r.text
    mid = uuid.UUID(r.json()["id"])

    port_a, port_b = free_port(), free_port()
    a = _worker(var_dir, "A", port_a)
    b: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 120  # generous: a loaded 2-core machine
        while _counts(sim_url, "apns", "tokens", [])["total"] - base_apns < 1000:
            assert a.poll() is None and time.monotonic() < deadline, "worker A did not get going"
            await asyncio.sleep(0.1)
        # APNs now answers slowly: worker A has a batch in flight when it is killed.
        httpx.post(f"{sim_url}/apns/_sim/fail", json={"count": 400, "status": 0, "delay_ms": 4000})
        await asyncio.sleep(1.0)
        a.send_signal(signal.SIGKILL)
        a.wait(10)
        httpx.post(f"{sim_url}/apns/_sim/fail", json={"count": 0})  # the slow spell ends
        left = await res.db.fetchval(
            "SELECT count(*) FROM push.deliveries WHERE message_id = $1 AND status <> 'delivered'", mid
        )
        assert left > 0, "worker A finished before it was killed"
        b = _worker(var_dir, "B", port_b)
        deadline = time.monotonic() + 150
        delivered = 0
        while time.monotonic() < deadline:
            delivered = await res.db.fetchval(
                "SELECT count(*) FROM push.deliveries WHERE message_id = $1 AND status = 'delivered'", mid
            )
            if delivered == total:
                break
            assert b.poll() is None, (var_dir / "worker-B.log").read_text()[-3000:]
            await asyncio.sleep(0.5)
        assert delivered == total, await res.db.fetch(
            "SELECT channel, status, error, count(*) FROM push.deliveries WHERE message_id = $1 GROUP BY 1, 2, 3", mid
        )
        metrics = httpx.get(f"http://127.0.0.1:{port_b}/metrics").text
    finally:
        _stop(a)
        if b is not None:
            _stop(b)
    # Exactly one at every recipient, as the simulators saw it (APNs/HarmonyOS: what the device shows).
    apns = _counts(sim_url, "apns", "tokens", a_tokens)
    assert sorted(set(apns["counts"].values())) == [1]
    assert sorted(set(_counts(sim_url, "hms", "tokens", h_tokens)["counts"].values())) == [1]
    assert sorted(set(_counts(sim_url, "sms", "phones", phones)["counts"].values())) == [1]
    # The crash path was taken: pairs in flight at the kill were taken back from the dead worker.
    recovered = await res.db.fetchval("SELECT count(*) FROM push.deliveries WHERE message_id = $1 AND recovered", mid)
    assert recovered > 0
    assert 'szt_push_deliveries_total{channel="apns",outcome="delivered"}' in metrics
    assert "szt_push_queue_depth" in metrics
