"""SM2 sign and verify through core.crypto next to tongsuopy called directly (the peer), one thread, in process."""

from __future__ import annotations

import time
from collections.abc import Callable

from tongsuopy.crypto import hashes
from tongsuopy.crypto.asymciphers import ec

from bench.context import Context
from bench.report import Row
from core.crypto import SM2PrivateKey, SM2PublicKey

MESSAGE = bytes(range(256))  # about the size of a JWT signing input
BATCH = 16  # calls between two clock reads
MAX_CALLS = 10_000_000


def ops_per_second(fn: Callable[[], object], seconds: float) -> tuple[int, float]:
    """Call `fn` for about `seconds`; returns (calls, elapsed)."""
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    now = start
    while now < deadline and calls < MAX_CALLS:
        for _ in range(BATCH):
            fn()
        calls += BATCH
        now = time.perf_counter()
    return calls, now - start


def core_rates(seconds: float) -> dict[str, float]:
    """core.crypto SM2 sign and verify per second on one thread, for scenarios run without this one."""
    key = SM2PrivateKey.generate()
    pub, sig = key.public_key(), key.sign(MESSAGE)
    out = {}
    for op, fn in (("sign", lambda: key.sign(MESSAGE)), ("verify", lambda: pub.verify(sig, MESSAGE))):
        ops_per_second(fn, 0.1)
        calls, elapsed = ops_per_second(fn, seconds)
        out[op] = calls / elapsed
    return out


def run(ctx: Context) -> list[Row]:
    ours = SM2PrivateKey.generate()
    ours_pub = ours.public_key()
    ours_sig = ours.sign(MESSAGE)

    algo = ec.ECDSA(hashes.SM3())
    peer = ec.generate_private_key(ec.SM2())
    peer_pub = peer.public_key()
    peer_sig = peer.sign(MESSAGE, algo)

    # Each side must accept the other's signatures, and reject a changed message, or the comparison means nothing.
    ours_pub.key.verify(ours_sig, MESSAGE, algo)  # tongsuopy raises if invalid
    if not SM2PublicKey(peer_pub).verify(peer_sig, MESSAGE) or ours_pub.verify(ours_sig, MESSAGE + b"!"):
        raise RuntimeError("core.crypto SM2 verify disagrees with tongsuopy")

    ops: dict[str, list[tuple[str, Callable[[], object]]]] = {
        "sign": [
            ("tongsuopy direct (peer)", lambda: peer.sign(MESSAGE, algo)),
            ("core.crypto", lambda: ours.sign(MESSAGE)),
        ],
        "verify": [
            ("tongsuopy direct (peer)", lambda: peer_pub.verify(peer_sig, MESSAGE, algo)),
            ("core.crypto", lambda: ours_pub.verify(ours_sig, MESSAGE)),
        ],
    }
    seconds = ctx.options.cpu_seconds
    rows: list[Row] = []
    for op, impls in ops.items():
        ctx.progress(f"SM2 {op}: {seconds:g} s per implementation")
        for _, fn in impls:
            ops_per_second(fn, 0.1)  # warm-up
        totals = {name: [0, 0.0] for name, _ in impls}
        # Short slices in alternating order, so that neither side always runs first and noise hits both alike.
        slices = max(2, round(seconds / 0.25))
        for k in range(slices):
            for name, fn in impls if k % 2 == 0 else impls[::-1]:
                calls, elapsed = ops_per_second(fn, seconds / slices)
                totals[name][0] += calls
                totals[name][1] += elapsed
        peer_rate = totals[impls[0][0]][0] / totals[impls[0][0]][1]
        our_name = impls[1][0]
        ctx.data[f"sm2.{op}"] = totals[our_name][0] / totals[our_name][1]
        for i, (name, _) in enumerate(impls):
            rate = totals[name][0] / totals[name][1]
            rows.append(
                Row(
                    scenario=f"SM2 {op} (SM3, {len(MESSAGE)} B)",
                    subject=name,
                    peak=rate,
                    unit=f"{op}/s",
                    peer=i == 0,
                    vs_peer=rate / peer_rate,
                )
            )
    ctx.note(f"SM2: in the bench process, 1 thread, {seconds:g} s per implementation and operation, no load generator.")
    return rows
