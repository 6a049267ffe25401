"""SMS verification codes: 6 digits, valid 5 minutes, 5 tries, sends rate-limited per phone and per IP."""

from __future__ import annotations

import secrets

from core.crypto import hmac_sm3
from core.problems import ProblemError
from core.ratelimit import count
from core.redis_client import LuaScript
from core.resources import Resources
from identity.errors import unprocessable
from identity.externals import SmsClient

CODE_TTL = 300
TRIES = 5
RESEND_AFTER = 60
PER_PHONE_PER_DAY = 10
TEMPLATE = "SZT_VERIFY_CODE"


def phone_key(res: Resources, phone: str) -> str:
    return res.fields.blind_index(phone, context="identity.phone").hex()[:32]


def _too_many(detail: str, retry_after: int) -> ProblemError:
    return ProblemError(
        429,
        "sms-rate-limited",
        "Too many SMS codes requested",
        "验证码发送过于频繁",
        detail,
        headers={"Retry-After": str(retry_after)},
    )


async def send_code(res: Resources, *, phone: str, purpose: str, ip: str) -> None:
    pk = phone_key(res, phone)
    redis = res.redis
    if not await redis.set(f"sms:gap:{purpose}:{pk}", b"1", nx=True, ex=RESEND_AFTER):
        raise _too_many("wait before asking for another code", RESEND_AFTER)
    if await count(redis, f"sms:day:{pk}", 86_400) > PER_PHONE_PER_DAY:
        raise _too_many("daily limit for this phone reached", 3600)
    if await count(redis, f"sms:ip:{ip}", 3600) > res.settings.sms_rate_per_ip:
        raise _too_many("hourly limit for this network address reached", 600)
    code = f"{secrets.randbelow(10**6):06d}"
    digest = hmac_sm3(pk.encode(), code.encode())
    await redis.hset(f"sms:code:{purpose}:{pk}", mapping={"h": digest, "tries": TRIES})
    await redis.expire(f"sms:code:{purpose}:{pk}", CODE_TTL)
    try:
        await SmsClient(res.http, res.settings.simulators_url).send(
            phone=phone, template=TEMPLATE, params={"code": code, "minutes": str(CODE_TTL // 60)}
        )
    except ProblemError:
        await redis.delete(f"sms:code:{purpose}:{pk}", f"sms:gap:{purpose}:{pk}")
        raise


# Compare and count in one step inside Redis, so a concurrent burst of guesses is judged like a sequence: the try
# after the last one finds the code gone (DESIGN: attempt counters). KEYS[1] the code; ARGV[1] the digest of the
# code given, ARGV[2] "1" to consume a right code. Returns {status, tries left}: 1 right, 0 wrong, -1 exhausted
# (this wrong try was the last), -2 no code.
_CHECK = LuaScript(
    """
local h = redis.call('HGET', KEYS[1], 'h')
if not h then return {-2, 0} end
local tries = tonumber(redis.call('HGET', KEYS[1], 'tries') or '0')
if tries <= 0 then redis.call('DEL', KEYS[1]) return {-2, 0} end
if h == ARGV[1] then
  if ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
  return {1, tries}
end
local left = redis.call('HINCRBY', KEYS[1], 'tries', -1)
if left <= 0 then redis.call('DEL', KEYS[1]) return {-1, 0} end
return {0, left}
"""
)


async def check_code(res: Resources, *, phone: str, purpose: str, code: str, consume: bool = True) -> None:
    """Check the code or raise; a wrong code spends one of the tries, the last wrong one kills the code.
    With `consume=False` a right code stays usable (call `consume_code` once the whole operation succeeded)."""
    pk = phone_key(res, phone)
    key = f"sms:code:{purpose}:{pk}"
    digest = hmac_sm3(pk.encode(), code.encode())
    status, left = await _CHECK(res.redis, [key], [digest, b"1" if consume else b"0"])
    if int(status) == 1:
        return
    if int(status) == -2:
        raise unprocessable(
            "sms-code-expired", "No valid SMS code: request a new one", "验证码已失效，请重新获取", field="sms_code"
        )
    if int(status) == -1:
        raise unprocessable(
            "sms-code-exhausted", "Too many wrong codes: request a new one", "验证码错误次数过多", field="sms_code"
        )
    raise unprocessable(
        "sms-code-wrong", "The SMS code is wrong", "验证码错误", f"{int(left)} tries left", field="sms_code"
    )


async def consume_code(res: Resources, *, phone: str, purpose: str) -> None:
    await res.redis.delete(f"sms:code:{purpose}:{phone_key(res, phone)}")
