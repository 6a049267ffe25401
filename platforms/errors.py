"""Errors of the outside platforms' clients, shared by their callers (sign-in, message channels)."""

from __future__ import annotations


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
