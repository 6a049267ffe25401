"""Dynamic identity codes: issued to a signed-in device, verified once by an entitled relying party, which gets a
result voucher with a pairwise user code and only the attributes it is entitled to and the user chose to share."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, date, datetime

import msgspec

from core import audit
from core.ids import new_id
from core.problems import ProblemError
from core.redis_client import LuaScript, as_bytes
from core.resources import Resources
from core.signed import sign_document
from identity import people
from identity.clients import Client
from identity.codes import codec as codes
from identity.codes import repo
from identity.codes.qr import qr_version
from identity.credentials.service import STATUS_HASH, credential_status
from identity.errors import forbidden
from identity.keys import issuer_keys
from identity.models import CodeRequest, IdentityCode, Voucher
from identity.sessions import ACR_ORDER, Principal

_CTX = "identity.code"
# One round trip: read the code's record, mark it used (keeping its TTL), and read its credential's status.
_CONSUME = LuaScript("""
local v = redis.call('GET', KEYS[1])
if not v then return {0, false, false} end
if v == 'used' then return {1, false, false} end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 1 then ttl = 1 end
redis.call('SET', KEYS[1], 'used', 'EX', ttl)
local sep = string.find(v, '|', 1, true)
local status = redis.call('HGET', KEYS[2], string.sub(v, 1, sep - 1))
return {2, v, status}
""")


class CodeRecord(msgspec.Struct):
    person_id: str
    serial: str
    acr: str
    attributes: dict[str, str | bool]
    text: str = ""


def _code_problem(status: int, kind: str, title: str, title_zh: str, detail: str = "") -> ProblemError:
    return ProblemError(status, f"code-{kind}", title, title_zh, detail or title, field="code")


_PARSE_PROBLEMS = {
    "malformed": (400, "This is not a 苏证通 identity code", "不是有效的身份码"),
    "unknown-key": (422, "The code is signed by a key this issuer does not publish", "身份码签名密钥未知"),
    "forged": (422, "The code's signature does not verify", "身份码签名无效"),
    "expired": (410, "The code has expired", "身份码已过期"),
}


async def issue_code(res: Resources, principal: Principal, req: CodeRequest) -> tuple[IdentityCode, str]:
    if principal.device_id is None or ACR_ORDER.get(principal.acr, 0) < ACR_ORDER["wz"]:
        raise forbidden(
            "credential-session-required", "Sign in with the 网证 on this device first", "请先使用本机网证登录"
        )
    serial = await repo.active_serial_of_device(res.db, uuid.UUID(principal.device_id))
    if serial is None:
        raise forbidden("credential-not-active", "This device has no active 网证", "本机没有有效的网证")
    person = await people.load(res, principal.person_id)
    record = CodeRecord(
        principal.person_id, serial, principal.acr, people.disclose(person, sorted(set(req.share)), date.today())
    )
    keys = await issuer_keys(res)
    issued = codes.issue(keys.private, ttl_seconds=req.ttl_seconds)
    record.text = issued.text
    sealed = res.fields.encrypt(msgspec.json.encode(record).decode(), context=_CTX)
    await res.redis.set(f"code:{issued.code_id.hex()}", f"{record.serial}|{sealed}", ex=req.ttl_seconds + 30)
    expires = datetime.fromtimestamp(issued.expires_at, UTC)
    base = f"/bff/v1/identity-codes/{issued.code_id.hex()}/image?format="
    view = IdentityCode(
        payload=issued.text,
        expires_at=expires.isoformat(),
        expires_in=req.ttl_seconds,
        qr_version=qr_version(issued.text),
        png_url=base + "png",
        svg_url=base + "svg",
    )
    return view, issued.code_id.hex()


async def code_text_for(res: Resources, principal: Principal, code_id: str) -> str | None:
    """The code's text, for its holder only (to render it as an image); None once used or expired."""
    value = await res.redis.get(f"code:{code_id}")
    if value is None or value == b"used":
        return None
    sealed = as_bytes(value).decode().partition("|")[2]
    record = msgspec.json.decode(res.fields.decrypt(sealed, context=_CTX), type=CodeRecord)
    return record.text if record.person_id == principal.person_id else None


def pairwise_user_code(res: Resources, sector: str, person_id: str) -> str:
    digest = res.fields.blind_index(f"{sector}|{person_id}", context="identity.pairwise")
    return base64.b32encode(digest[:15]).decode()


async def verify_code(res: Resources, client: Client, text: str, *, signed: bool, ip: str) -> Voucher:
    if client.kind not in ("verifier", "app", "business"):
        raise forbidden("not-a-verifier", "This client may not verify identity codes", "该客户端无权核验身份码")
    keys = await issuer_keys(res)
    try:
        parsed = codes.verify(text, keys.published)
    except codes.CodeError as exc:
        status, title, title_zh = _PARSE_PROBLEMS[exc.kind]
        raise _code_problem(status, exc.kind, title, title_zh) from exc
    state, value, status = await _CONSUME(res.redis, [f"code:{parsed.code_id.hex()}", STATUS_HASH])
    if state == 0:
        raise _code_problem(410, "expired", "The code has expired", "身份码已过期")
    if state == 1:
        raise _code_problem(409, "replayed", "The code was already verified", "身份码已被核验，请刷新后重试")
    serial, _, sealed = value.decode().partition("|")
    status_text = status.decode() if status else await credential_status(res, serial)
    if status_text != "active":
        raise _code_problem(
            403,
            f"credential-{status_text or 'unknown'}",
            "The holder's 网证 is not active",
            "持码人网证已失效",
            f"credential status: {status_text}",
        )
    record = msgspec.json.decode(res.fields.decrypt(sealed, context=_CTX), type=CodeRecord)
    allowed = {k: v for k, v in record.attributes.items() if k in client.entitlements}
    now = datetime.now(UTC)
    voucher = Voucher(
        voucher_id=new_id(),
        verified_at=now.isoformat(),
        mode=record.acr,
        result="pass",
        user_code=pairwise_user_code(res, client.sector, record.person_id),
        attributes=allowed,
        signed="",
    )
    if signed:
        voucher.signed = sign_document(
            keys.private,
            {"kid": keys.kid, "typ": "szt-voucher", "aud": client.client_id, **msgspec.to_builtins(voucher)},
        )
    if people.UNMASKED & allowed.keys():
        await audit.record(
            res.db,
            actor=f"client:{client.client_id}",
            action="identity.code.disclose",
            target=record.serial,
            ip=ip,
            detail={"attributes": sorted(allowed)},
        )
    return voucher
