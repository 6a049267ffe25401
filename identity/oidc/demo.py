"""`/demo`: a third-party portal as it would integrate — QR-scan login through our OpenID provider, over real
HTTP, with the seeded `demo-portal` client (confidential, PKCE)."""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import MediaType, Request, Response, get
from litestar.params import Parameter
from litestar.response import Redirect

from core.redis_client import as_bytes
from core.resources import Resources
from identity.seed import DEMO_CLIENT, demo_secret

Req = Request[Any, Any, Any]


def _res(request: Req) -> Resources:
    res: Resources = request.app.state.resources
    return res


def _page(body: str) -> str:
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>演示门户 Demo portal</title>
<style>body{{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:3rem;max-width:44rem}}
a.btn{{background:#1a56db;color:#fff;padding:.6rem 1.2rem;border-radius:.4rem;text-decoration:none}}
td{{padding:.25rem .8rem;border-bottom:1px solid #ddd}}</style></head><body><h1>演示门户 · Demo portal</h1>
{body}</body></html>"""


@get("/demo", include_in_schema=False, media_type=MediaType.HTML)
async def demo_home() -> str:
    return _page(
        "<p>一个接入苏证通统一登录的第三方门户。A portal that logs its users in with 苏证通.</p>"
        '<p><a class="btn" href="/demo/login">使用苏证通扫码登录 · Log in with 苏证通</a></p>'
    )


@get("/demo/login", include_in_schema=False)
async def demo_login(request: Req) -> Redirect:
    res = _res(request)
    state, nonce, verifier = secrets.token_urlsafe(16), secrets.token_urlsafe(16), secrets.token_urlsafe(48)
    await res.redis.set(f"demo:{state}", msgspec.json.encode({"nonce": nonce, "verifier": verifier}), ex=600)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": DEMO_CLIENT,
            "scope": "openid profile age",
            "redirect_uri": f"{res.settings.base_url}/demo/callback",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return Redirect(f"{res.settings.issuer_url}/authorize?{query}")


@get("/demo/callback", include_in_schema=False, media_type=MediaType.HTML)
async def demo_callback(
    request: Req, code: str = "", oauth_state: Annotated[str, Parameter(query="state")] = "", error: str = ""
) -> Response[str]:
    res = _res(request)
    saved = await res.redis.getdel(f"demo:{oauth_state[:64]}") if oauth_state else None
    if error or not code or saved is None:
        return Response(
            _page(f'<p>登录未完成：{html.escape(error or "invalid state")}</p><p><a href="/demo">返回</a></p>'),
            status_code=400,
            media_type=MediaType.HTML,
        )
    flow = msgspec.json.decode(as_bytes(saved))
    token = await res.http.post(
        f"{res.settings.issuer_url}/token",
        auth=(DEMO_CLIENT, demo_secret(res)),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": flow["verifier"],
            "redirect_uri": f"{res.settings.base_url}/demo/callback",
        },
    )
    if token.status_code != 200:
        return Response(
            _page(f"<p>换取令牌失败：{html.escape(token.text[:200])}</p>"), status_code=502, media_type=MediaType.HTML
        )
    access = token.json()["access_token"]
    info = (
        await res.http.get(f"{res.settings.issuer_url}/userinfo", headers={"Authorization": f"Bearer {access}"})
    ).json()
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in info.items())
    return Response(
        _page(
            f'<p>已登录 · Signed in. The portal received only:</p><table>{rows}</table><p><a href="/demo">返回</a></p>'
        ),
        media_type=MediaType.HTML,
    )


ROUTES = [demo_home, demo_login, demo_callback]
