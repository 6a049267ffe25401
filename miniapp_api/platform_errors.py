"""WeChat errcodes and Alipay error codes as problem documents the mini program can act on."""

from __future__ import annotations

from core.problems import ProblemError
from platforms.errors import UNVERIFIED, AlipayError, WechatError


def _p(
    status: int,
    slug: str,
    title: str,
    title_zh: str,
    detail: str,
    field: str | None = None,
    retry_after: int | None = None,
) -> ProblemError:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return ProblemError(status, slug, title, title_zh, detail, field=field, headers=headers)


def wechat_problem(exc: WechatError, field: str = "code") -> ProblemError:
    detail = f"WeChat errcode {exc.errcode}"
    if exc.errcode in (40029, 40163):
        return _p(
            422,
            "wechat-code-invalid",
            "The WeChat login code is invalid or used; call wx.login again",
            "微信登录凭证无效或已使用，请重新登录",
            detail,
            field,
        )
    if exc.errcode == 45011:
        return _p(
            429,
            "wechat-rate-limited",
            "WeChat is limiting logins; retry in a minute",
            "微信接口调用过于频繁，请稍后再试",
            detail,
            retry_after=60,
        )
    if exc.errcode == 40226:
        return _p(
            403,
            "wechat-high-risk-user",
            "WeChat's risk control blocks this user's login",
            "该微信用户存在安全风险，已被拦截",
            detail,
        )
    if exc.errcode == -1:
        return _p(
            503, "wechat-busy", "WeChat is busy; retry shortly", "微信系统繁忙，请稍后再试", detail, retry_after=5
        )
    return _p(502, "wechat-failed", "The WeChat service refused the call", "微信服务调用失败", detail)


def alipay_problem(exc: AlipayError, field: str = "auth_code") -> ProblemError:
    detail = f"Alipay {exc.code} {exc.sub_code}".strip()
    if exc.sub_code in ("isv.code-invalid", "isv.refresh-token-invalid"):
        return _p(
            422,
            "alipay-code-invalid",
            "The Alipay auth code is invalid or used; call my.getAuthCode again",
            "支付宝授权码无效或已使用，请重新授权",
            detail,
            field,
        )
    if exc.sub_code == "isv.invalid-signature":
        return _p(
            502,
            "alipay-signature-refused",
            "Alipay refused our request signature",
            "支付宝验签失败（应用密钥配置错误）",
            detail,
        )
    if exc.sub_code == UNVERIFIED:
        return _p(
            502,
            "alipay-response-unverified",
            "Alipay's answer failed its signature check and was refused",
            "支付宝返回数据验签失败，已拒绝",
            detail,
        )
    if exc.code in ("20000", "-2"):
        return _p(
            503,
            "alipay-busy",
            "Alipay is unavailable; retry shortly",
            "支付宝服务繁忙，请稍后再试",
            detail,
            retry_after=5,
        )
    return _p(502, "alipay-failed", "The Alipay service refused the call", "支付宝服务调用失败", detail)
