"""Alipay gateway RSA2 per call: our request signing (canonical string + SHA256withRSA) and answer verification
(response node extracted byte for byte + signature check) next to `cryptography` signing/verifying the same bytes
(the peer: the floor any implementation pays). One thread, in process."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

from bench.context import Context
from bench.crypto_sm2 import ops_per_second
from bench.report import Row
from core.crypto import generate_rsa_key, rsa_sign, rsa_verify
from platforms.alipay import sign_content, signed_params, verified_answer

METHOD = "alipay.system.oauth.token"
EXTRA = {"grant_type": "authorization_code", "code": "4b203fe6c11548bcabd8da5bb087a83b"}


def _answer(key: object) -> str:
    body = {
        "user_id": "2088102104794936",
        "open_id": "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5",
        "access_token": "authusrB" + "0" * 32,
        "expires_in": 1296000,
        "refresh_token": "authusrB" + "1" * 32,
        "re_expires_in": 2592000,
        "auth_start": "2026-12-01 23:59:59",
    }
    content = json.dumps(body, separators=(",", ":"))
    sign = base64.b64encode(rsa_sign(key, content.encode()))  # type: ignore[arg-type]
    return f'{{"alipay_system_oauth_token_response":{content},"sign":"{sign.decode()}"}}'


def run(ctx: Context) -> list[Row]:
    app, alipay = generate_rsa_key(2048), generate_rsa_key(2048)
    text = _answer(alipay)
    params = signed_params(app, METHOD, EXTRA)
    string = sign_content(params).encode()
    node = text[text.index(":") + 1 : text.rindex(',"sign"')].encode()
    sig = base64.b64decode(json.loads(text)["sign"])
    if verified_answer(text, METHOD, alipay.public_key())["user_id"] != "2088102104794936":
        raise RuntimeError("verification failed")
    ops: dict[str, list[tuple[str, Callable[[], object]]]] = {
        "sign request": [
            ("cryptography RSA2 sign (peer)", lambda: rsa_sign(app, string)),
            ("platforms.alipay.signed_params", lambda: signed_params(app, METHOD, EXTRA)),
        ],
        "verify answer": [
            ("cryptography RSA2 verify (peer)", lambda: rsa_verify(alipay.public_key(), sig, node)),
            ("platforms.alipay.verified_answer", lambda: verified_answer(text, METHOD, alipay.public_key())),
        ],
    }
    seconds = ctx.options.cpu_seconds
    rows: list[Row] = []
    for op, impls in ops.items():
        ctx.progress(f"Alipay RSA2 {op}: {seconds:g} s per implementation")
        totals = {name: [0, 0.0] for name, _ in impls}
        slices = max(2, round(seconds / 0.25))
        for k in range(slices):
            for name, fn in impls if k % 2 == 0 else impls[::-1]:
                calls, elapsed = ops_per_second(fn, seconds / slices)
                totals[name][0] += calls
                totals[name][1] += elapsed
        peer_rate = totals[impls[0][0]][0] / totals[impls[0][0]][1]
        for i, (name, _) in enumerate(impls):
            rate = totals[name][0] / totals[name][1]
            rows.append(
                Row(
                    scenario=f"Alipay gateway RSA-2048 {op}",
                    subject=name,
                    peak=rate,
                    unit="op/s",
                    peer=i == 0,
                    vs_peer=rate / peer_rate,
                )
            )
    ctx.note("Alipay RSA2: in the bench process, 1 thread, no load generator.")
    return rows
