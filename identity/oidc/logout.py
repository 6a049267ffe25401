"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) and back-channel logout notifications."""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import jwt
from litestar import MediaType, Response
from litestar.response import Redirect

from core import audit, outbound
from core.problems import invalid
from core.resources import Resources
from identity import clients
from identity.oidc import repo
from identity.oidc.jose import sign_jwt, verify_own_jwt
from identity.oidc.tokens import revoke_family

log = logging.getLogger("szt.identity.logout")
EVENT = "http://schemas.openid.net/event/backchannel-logout"


async def notify_backchannel(res: Resources, client_id: str, sub: str, sid: str) -> None:
    uri = await repo.backchannel_logout_uri(res.db, client_id)
    if not uri:
        return
    now = int(time.time())
    token = await sign_jwt(
        res,
        {
            "iss": res.settings.issuer_url,
            "aud": client_id,
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_hex(16),
            "sub": sub,
            "sid": sid,
            "events": {EVENT: {}},
        },
        typ="logout+jwt",
    )
    try:
        resp = await outbound.post(res.settings, uri, data={"logout_token": token}, time_limit=5.0, max_redirects=0)
        if resp.status_code >= 400:
            log.warning("back-channel logout refused", extra={"client_id": client_id, "status": resp.status_code})
    except Exception as exc:  # a client being down must not break the user's logout
        log.warning("back-channel logout failed", extra={"client_id": client_id, "error": type(exc).__name__})


async def end_sid(res: Resources, sid: str, reason: str) -> list[tuple[str, str]]:
    """Revoke every token family issued under app session `sid`; notify their clients. Returns (client, sub)."""
    rows = await repo.live_families_of_sid(res.db, sid)
    ended: list[tuple[str, str]] = []
    from identity.oidc.tokens import subject

    for r in rows:
        await revoke_family(res, str(r["family"]), reason)
        client = await clients.get(res, r["client_id"], cached=True)
        if client is not None:
            sub = subject(res, client, str(r["person_id"]))
            await notify_backchannel(res, client.client_id, sub, sid)
            ended.append((client.client_id, sub))
    return ended


async def end_session(
    res: Resources,
    *,
    id_token_hint: str | None,
    post_logout_redirect_uri: str | None,
    state: str | None,
    client_id: str | None,
) -> Response[Any]:
    """Everything is checked first — the ID token, the client, the redirect registered for that client, the state —
    and only then is anything revoked: a refused logout changes nothing."""
    claims: dict[str, Any] = {}
    if id_token_hint:
        try:
            claims = await verify_own_jwt(res, id_token_hint, verify_exp=False)
        except (jwt.PyJWTError, ValueError) as exc:
            raise invalid("id_token_hint", "not an ID token issued here") from exc
    aud = claims.get("aud")
    audiences = [str(a) for a in aud] if isinstance(aud, list) else ([str(aud)] if aud else [])
    if client_id and audiences and client_id not in audiences:
        raise invalid("client_id", "not the audience of id_token_hint")
    audience = client_id or (audiences[0] if audiences else "")
    if state is not None and any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in state):
        raise invalid("state", "printable characters only")
    target: str | None = None
    if post_logout_redirect_uri:
        client = await clients.get(res, audience[:128], cached=True) if audience else None
        allowed = await repo.post_logout_redirect_uris(res.db, audience) if client else None
        if not allowed or post_logout_redirect_uri not in allowed:
            raise invalid("post_logout_redirect_uri", "not registered for this client (give id_token_hint)")
        sep = "&" if "?" in post_logout_redirect_uri else "?"
        target = post_logout_redirect_uri + (sep + urlencode({"state": state}) if state else "")
    if claims.get("sid"):
        ended = await end_sid(res, str(claims["sid"]), "rp-initiated logout")
        await audit.record(
            res.db,
            actor=f"client:{audience}",
            action="identity.logout",
            target=str(claims["sid"]),
            detail={"clients": [c for c, _ in ended]},
        )
    if target is not None:
        return Redirect(target, status_code=302)
    return Response("<!doctype html><meta charset=utf-8><p>已退出登录 · Signed out</p>", media_type=MediaType.HTML)
