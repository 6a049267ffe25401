"""Client of the WeChat server API (mini programs): code2Session, access tokens, phone numbers, subscribe messages.

Configured by URL (`settings.simulators_url` in development). Sign-in (identity, through miniapp_api) and the message
channels (push) share it: the WeChat access token is cached once in Redis for every replica.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx
import msgspec

from core.http1 import TRANSPORT_ERRORS
from core.redis_client import as_bytes
from core.resources import Resources
from core.secrets_file import read_or_create
from platforms.errors import WechatError
from platforms.http import call

log = logging.getLogger("szt.platforms.wechat")

WECHAT_APPID = "wx5a2c0d7e9b3f1a01"
TOKEN_KEY = f"mini:wechat:access-token:{WECHAT_APPID}"
TOKEN_MARGIN = 300  # renew five minutes before WeChat's expiry
TOKEN_ERRORS = frozenset({40001, 42001})


def _secret(res: Resources, name: str, make: Any) -> str:
    return read_or_create(res.settings.var_path / "keys" / name, make)


_JSON_HEADERS = {"Content-Type": "application/json"}


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
                r = await call(self.base, method, target, content, _JSON_HEADERS)
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
