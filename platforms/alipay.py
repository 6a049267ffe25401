"""Client of the Alipay open-platform gateway (mini programs): RSA2-signed `gateway.do` calls.

Configured by URL (`settings.simulators_url` in development). Sign-in (identity, through miniapp_api) and the message
channels (push) share it: requests are RSA2-signed with the app's private key while every answer's signature is
checked against the Alipay public key.
"""

from __future__ import annotations

import base64
import functools
import json
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core import clock
from core.crypto import generate_rsa_key, rsa_sign, rsa_verify
from core.http1 import TRANSPORT_ERRORS
from core.resources import Resources
from core.secrets_file import read_or_create
from platforms.errors import UNVERIFIED, AlipayError
from platforms.http import call

ALIPAY_APP_ID = "2021004100000001"


@functools.cache
def _app_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(read_or_create(path, _new_rsa_pem).encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


_FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"}


def sign_content(params: dict[str, str]) -> str:
    """Alipay's string to sign: every parameter but `sign`, empty ones left out, sorted by name, `k=v&k=v`."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] != "")


def response_node(text: str, node: str) -> str | None:
    """The exact text of `"<node>": {...}` inside an Alipay answer: what Alipay signed, byte for byte."""
    start = text.find(f'"{node}"')
    if start < 0:
        return None
    i = text.index(":", start + len(node) + 2) + 1
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    try:
        _, end = json.JSONDecoder().raw_decode(text, i)
    except ValueError:
        return None
    return text[i:end]


def signed_params(key: rsa.RSAPrivateKey, method: str, extra: dict[str, str]) -> dict[str, str]:
    """The public parameters of a gateway call plus `extra`, signed RSA2 over Alipay's canonical string."""
    params = {
        "app_id": ALIPAY_APP_ID,
        "method": method,
        "format": "JSON",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": clock.beijing_text(clock.now()),
        "version": "1.0",
        **extra,
    }
    params["sign"] = base64.b64encode(rsa_sign(key, sign_content(params).encode("utf-8"))).decode()
    return params


def verified_answer(text: str, method: str, alipay_key: rsa.RSAPublicKey) -> dict[str, Any]:
    """The response node of a gateway answer once its signature verifies; AlipayError for an error code, a bad or
    missing signature (a success must be signed; gateway refusals come unsigned, as Alipay sends them)."""
    try:
        outer = json.loads(text)
    except ValueError as exc:
        raise AlipayError("-2", "not JSON") from exc
    node = method.replace(".", "_") + "_response"
    name = node if isinstance(outer, dict) and node in outer else "error_response"
    content = response_node(text, name)
    body = outer.get(name) if isinstance(outer, dict) else None
    if content is None or not isinstance(body, dict):
        raise AlipayError("-2", "no response node")
    sign = outer.get("sign")
    failed = "code" in body and body["code"] != "10000"
    if sign:
        try:
            ok = rsa_verify(alipay_key, base64.b64decode(sign), content.encode("utf-8"))
        except ValueError:
            ok = False
        if not ok:
            raise AlipayError("-3", "response signature does not verify", UNVERIFIED)
    elif not failed:
        raise AlipayError("-3", "unsigned response", UNVERIFIED)
    if failed:
        raise AlipayError(
            str(body["code"]), str(body.get("msg", "")), str(body.get("sub_code", "")), str(body.get("sub_msg", ""))
        )
    return body


class AlipayGateway:
    """`gateway.do` calls: RSA2-signed requests; answers accepted only when their RSA2 signature verifies."""

    _alipay_keys: ClassVar[dict[str, Any]] = {}  # simulator URL -> Alipay public key (the console's, in production)

    def __init__(self, res: Resources) -> None:
        self.res = res
        self.base = f"{res.settings.simulators_url}/alipay"
        self.key = _app_key(res.settings.var_path / "keys" / "alipay-app-rsa.pem")

    async def _alipay_key(self, force: bool = False) -> Any:
        found = self._alipay_keys.get(self.base)
        if found is not None and not force:
            return found
        public = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        r = await self.res.http.post(
            f"{self.base}/_sim/apps", json={"app_id": ALIPAY_APP_ID, "public_key_pem": public.decode()}
        )
        r.raise_for_status()
        found = serialization.load_pem_public_key(r.json()["alipay_public_key_pem"].encode())
        self._alipay_keys[self.base] = found
        return found

    def signed_params(self, method: str, extra: dict[str, str]) -> dict[str, str]:
        return signed_params(self.key, method, extra)

    async def call(self, method: str, extra: dict[str, str]) -> dict[str, Any]:
        alipay_key = await self._alipay_key()
        for attempt in (1, 2):
            content = urlencode(self.signed_params(method, extra)).encode()
            try:
                r = await call(self.base, "POST", "/gateway.do", content, _FORM_HEADERS)
            except TRANSPORT_ERRORS as exc:
                raise AlipayError("-2", f"unreachable: {type(exc).__name__}") from exc
            try:
                return verified_answer(r.content.decode("utf-8", "replace"), method, alipay_key)
            except AlipayError as exc:
                if exc.sub_code == "isv.invalid-app-id" and attempt == 1:  # a restarted simulator forgot our key
                    alipay_key = await self._alipay_key(force=True)
                    continue
                raise
        raise AlipayError("40002", "Invalid Arguments", "isv.invalid-app-id")

    async def oauth_token(self, auth_code: str) -> tuple[str, str]:
        """(user_id, open_id) for a my.getAuthCode code."""
        body = await self.call("alipay.system.oauth.token", {"grant_type": "authorization_code", "code": auth_code})
        return str(body["user_id"]), str(body.get("open_id", ""))

    async def template_send(
        self, user_id: str, form_id: str, template_id: str, page: str, data: dict[str, str]
    ) -> None:
        biz = {
            "to_user_id": user_id,
            "form_id": form_id,
            "user_template_id": template_id,
            "page": page,
            "data": json.dumps({k: {"value": v} for k, v in data.items()}, ensure_ascii=False),
        }
        await self.call(
            "alipay.open.app.mini.templatemessage.send", {"biz_content": json.dumps(biz, ensure_ascii=False)}
        )


def _new_rsa_pem() -> str:
    raw: bytes = generate_rsa_key(2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return raw.decode()
