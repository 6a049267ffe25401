"""Clients of the two mini-program platforms: the WeChat server API and the Alipay open-platform gateway.

One class each, configured by URL (`settings.simulators_url` in development). Sign-in (identity) and the message
channels (push) share them: the WeChat access token is cached once in Redis for every replica, and Alipay requests
are RSA2-signed with the app's private key while every answer's signature is checked against the Alipay public key.
API calls go through core.http1's keep-alive client: a broadcast sends one HTTPS call per mini-program user, and
httpx cost ~1.3 ms of CPU per call there (its pool checks every pooled connection on each request).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import logging
import secrets
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx
import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.crypto import generate_rsa_key, rsa_sign, rsa_verify
from core.http1 import TRANSPORT_ERRORS, HTTPResponse, keepalive_client
from core.redis_client import as_bytes
from core.resources import Resources
from core.secrets_file import read_or_create

log = logging.getLogger("szt.identity.miniprograms")

WECHAT_APPID = "wx5a2c0d7e9b3f1a01"
ALIPAY_APP_ID = "2021004100000001"
TOKEN_KEY = f"mini:wechat:access-token:{WECHAT_APPID}"
TOKEN_MARGIN = 300  # renew five minutes before WeChat's expiry
TOKEN_ERRORS = frozenset({40001, 42001})
BEIJING = dt.timezone(dt.timedelta(hours=8))


class WechatError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class AlipayError(Exception):
    """An Alipay answer with an error code (`code` other than 10000), or one whose signature does not verify."""

    def __init__(self, code: str, msg: str, sub_code: str = "", sub_msg: str = "") -> None:
        super().__init__(f"{code} {msg} {sub_code}".strip())
        self.code, self.msg, self.sub_code, self.sub_msg = code, msg, sub_code, sub_msg


UNVERIFIED = "szt.response-unverified"  # AlipayError.sub_code when the answer's signature does not check out


def _secret(res: Resources, name: str, make: Any) -> str:
    return read_or_create(res.settings.var_path / "keys" / name, make)


@functools.cache
def _app_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(read_or_create(path, _new_rsa_pem).encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


_JSON_HEADERS = {"Content-Type": "application/json"}
_FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"}
CALL_TIMEOUT = 5.0


async def _call(base: str, method: str, target: str, content: bytes, headers: dict[str, str]) -> HTTPResponse:
    return await keepalive_client(base, timeout=CALL_TIMEOUT).request(method, target, content, lambda: headers)


class WechatApi:
    """code2Session, access tokens (getStableAccessToken, cached in Redis), getPhoneNumber, subscribeMessage.send."""

    _registered: ClassVar[set[str]] = set()  # simulator URLs this process registered the app with

    def __init__(self, res: Resources) -> None:
        self.res = res
        self.base = f"{res.settings.simulators_url}/wechat"
        self.secret = _secret(res, "wechat-app-secret", lambda: secrets.token_hex(16))

    async def _register(self, force: bool = False) -> None:
        """Simulator only: the app's secret as the WeChat console would hold it."""
        if self.base in self._registered and not force:
            return
        try:
            r = await self.res.http.post(f"{self.base}/_sim/apps", json={"appid": WECHAT_APPID, "secret": self.secret})
        except httpx.HTTPError as exc:
            raise WechatError(-2, f"unreachable: {type(exc).__name__}") from exc
        if r.status_code not in (200, 404):  # 404: the real WeChat, where the console holds the secret
            raise WechatError(-2, f"app registration: HTTP {r.status_code}")
        self._registered.add(self.base)

    async def _json(
        self, method: str, path: str, *, params: dict[str, str] | None = None, json: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        await self._register()
        target = f"{path}?{urlencode(params)}" if params else path
        content = msgspec.json.encode(json) if json is not None else b""
        for attempt in (1, 2):
            try:
                r = await _call(self.base, method, target, content, _JSON_HEADERS)
            except TRANSPORT_ERRORS as exc:
                raise WechatError(-2, f"unreachable: {type(exc).__name__}") from exc
            try:
                body: dict[str, Any] = msgspec.json.decode(r.content)
            except ValueError as exc:
                raise WechatError(-2, f"HTTP {r.status_code}") from exc
            code = int(body.get("errcode", 0) or 0)
            if code in (40013, 40125) and attempt == 1:  # a restarted simulator forgot the app
                await self._register(force=True)
                continue
            if code:
                raise WechatError(code, str(body.get("errmsg", "")))
            return body
        raise WechatError(40013, "invalid appid")

    async def code2session(self, code: str) -> tuple[str, str, str]:
        """(openid, unionid, session_key) for a wx.login code."""
        params = {"appid": WECHAT_APPID, "secret": self.secret, "js_code": code, "grant_type": "authorization_code"}
        body = await self._json("GET", "/sns/jscode2session", params=params)
        return str(body["openid"]), str(body.get("unionid", "")), str(body["session_key"])

    async def access_token(self, *, stale: str = "") -> str:
        """The app's access token from Redis, or a fresh one from getStableAccessToken (which hands every caller the
        same token, so concurrent replicas never invalidate each other's). `stale`: a token WeChat just refused."""
        cached = await self.res.redis.get(TOKEN_KEY)
        if cached is not None and as_bytes(cached).decode() != stale:
            return as_bytes(cached).decode()
        body = {"grant_type": "client_credential", "appid": WECHAT_APPID, "secret": self.secret}
        answer = await self._json("POST", "/cgi-bin/stable_token", json={**body, "force_refresh": False})
        token = str(answer["access_token"])
        if token == stale:  # WeChat still holds the refused token as current: ask for a new one
            answer = await self._json("POST", "/cgi-bin/stable_token", json={**body, "force_refresh": True})
            token = str(answer["access_token"])
        ttl = max(60, int(answer.get("expires_in", 7200)) - TOKEN_MARGIN)
        await self.res.redis.set(TOKEN_KEY, token.encode(), ex=ttl)
        return token

    async def _with_token(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        token = await self.access_token()
        try:
            return await self._json("POST", path, params={"access_token": token}, json=body)
        except WechatError as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
            log.info("wechat access token refused; renewing", extra={"errcode": exc.errcode})
            token = await self.access_token(stale=token)
            return await self._json("POST", path, params={"access_token": token}, json=body)

    async def phone_number(self, code: str) -> str:
        body = await self._with_token("/wxa/business/getuserphonenumber", {"code": code})
        return str(body["phone_info"]["purePhoneNumber"])

    async def subscribe_send(self, openid: str, template_id: str, data: dict[str, str], page: str) -> int:
        body = {
            "touser": openid,
            "template_id": template_id,
            "page": page,
            "miniprogram_state": "formal",
            "lang": "zh_CN",
            "data": {k: {"value": v} for k, v in data.items()},
        }
        answer = await self._with_token("/cgi-bin/message/subscribe/send", body)
        return int(answer.get("msgid", 0))


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
        "timestamp": dt.datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
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
                r = await _call(self.base, "POST", "/gateway.do", content, _FORM_HEADERS)
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
