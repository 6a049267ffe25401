"""Masking of personal data for display (front doors, admin lists, logs).

Every function tolerates empty and short input and never raises; ``None`` becomes ``""``. Masks keep
the original length where the length itself is public knowledge (ID numbers, phones) so the output
still looks like the field it came from.
"""

from __future__ import annotations

__all__ = ["mask_address", "mask_email", "mask_id_number", "mask_name", "mask_phone"]

STAR = "*"


def _keep(value: str, head: int, tail: int) -> str:
    """Keep ``head`` leading and ``tail`` trailing characters, star the middle (same length)."""
    middle = len(value) - head - tail
    return value[:head] + STAR * middle + (value[len(value) - tail :] if tail else "")


def mask_name(name: str | None) -> str:
    """``张三丰`` -> ``张**``, ``张三`` -> ``张*``; a one-character name is fully starred."""
    name = (name or "").strip()
    if len(name) <= 1:
        return STAR * len(name)
    return _keep(name, 1, 0)


def mask_id_number(id_number: str | None) -> str:
    """First 3 and last 4 kept: ``320106199001011234`` -> ``320***********1234``.

    Anything too short to hide something in the middle is fully starred.
    """
    value = (id_number or "").strip()
    if len(value) <= 7:
        return STAR * len(value)
    return _keep(value, 3, 4)


def mask_phone(phone: str | None) -> str:
    """``13812345678`` -> ``138****5678``; short numbers are fully starred."""
    value = (phone or "").strip()
    if len(value) <= 7:
        return STAR * len(value)
    return _keep(value, 3, 4)


def mask_address(address: str | None) -> str:
    """First 6 characters then ``****``: ``江苏省南京市玄武区...`` -> ``江苏省南京市****``.

    The tail length is hidden too. Short addresses keep only their first half.
    """
    value = (address or "").strip()
    if not value:
        return ""
    keep = 6 if len(value) > 6 else len(value) // 2
    return value[:keep] + STAR * 4


def mask_email(email: str | None) -> str:
    """``zhangsan@example.com`` -> ``z***@example.com``; no ``@`` masks like a name."""
    value = (email or "").strip()
    local, at, domain = value.rpartition("@")
    if not at:
        return value[:1] + STAR * 3 if value else ""
    return (local[:1] if len(local) > 1 else "") + STAR * 3 + "@" + domain
