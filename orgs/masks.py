"""Masking management: a catalogue of sensitive fields with levels (1 low … 3 high); a role sees a field
unmasked when its mask_level reaches the field's level. Applied to every admin response and export."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from core import audit
from core.masking import mask_address, mask_email, mask_id_number, mask_name, mask_phone
from core.problems import invalid
from core.resources import Resources
from orgs.models import AdminPrincipal


def mask_ip(ip: str | None) -> str:
    """``10.1.2.3`` -> ``10.1.*.*``; IPv6 keeps its first two groups."""
    value = (ip or "").strip()
    if "." in value:
        parts = value.split(".")
        return ".".join(parts[:2] + ["*"] * (len(parts) - 2))
    if ":" in value:
        return ":".join(value.split(":")[:2]) + ":*"
    return "*" * len(value)


RULES: dict[str, Callable[[str | None], str]] = {
    "name": mask_name,
    "phone": mask_phone,
    "id_number": mask_id_number,
    "address": mask_address,
    "email": mask_email,
    "ip": mask_ip,
    "all": lambda v: "*" * len(v or ""),
}

# field -> (label, level, rule): the seeded catalogue.
DEFAULTS: dict[str, tuple[str, int, str]] = {
    "name": ("姓名", 2, "name"),
    "phone": ("手机号码", 2, "phone"),
    "id_number": ("身份证号", 3, "id_number"),
    "address": ("住址", 2, "address"),
    "email": ("电子邮箱", 1, "email"),
    "ip": ("IP地址", 1, "ip"),
    "contact_name": ("联系人姓名", 2, "name"),
    "contact_phone": ("联系人电话", 2, "phone"),
}


class MaskField(msgspec.Struct):
    field: str
    label: str
    level: int
    rule: str


class MaskFieldList(msgspec.Struct):
    items: list[MaskField]


class MaskFieldUpdate(msgspec.Struct):
    level: int
    label: str | None = None


class Masker:
    """Per-response masking for one principal: `masker("phone", value)`. Remembers unmasked reads for the audit."""

    def __init__(self, p: AdminPrincipal, catalogue: dict[str, MaskField]) -> None:
        self.p, self.catalogue = p, catalogue
        self.unmasked: set[str] = set()

    def __call__(self, field: str, value: str | None) -> str:
        spec = self.catalogue.get(field)
        if spec is None:
            return value or ""
        if self.p.mask_level >= spec.level:
            if value:
                self.unmasked.add(field)
            return value or ""
        return RULES[spec.rule](value)

    def visible(self, field: str) -> bool:
        spec = self.catalogue.get(field)
        return spec is None or self.p.mask_level >= spec.level

    async def audit(self, res: Resources, what: str) -> None:
        """Every read of unmasked personal data is written to the audit log (docs/design.md)."""
        personal = self.unmasked - {"ip"}
        if personal:
            await audit.record(
                res.db,
                actor=f"admin:{self.p.username}",
                action="unmasked_read",
                target=what,
                detail={"fields": sorted(personal)},
            )


async def catalogue(res: Resources) -> dict[str, MaskField]:
    rows = await res.db.fetch("SELECT field, label, level, rule FROM orgs.mask_fields ORDER BY field")
    return {r["field"]: MaskField(field=r["field"], label=r["label"], level=r["level"], rule=r["rule"]) for r in rows}


async def masker(res: Resources, p: AdminPrincipal) -> Masker:
    return Masker(p, await catalogue(res))


async def seed(res: Resources) -> None:
    await res.db.executemany(
        "INSERT INTO orgs.mask_fields (field, label, level, rule) VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING",
        [(f, label, level, rule) for f, (label, level, rule) in DEFAULTS.items()],
    )


async def update(res: Resources, p: AdminPrincipal, field: str, data: MaskFieldUpdate) -> MaskField:
    if not 1 <= data.level <= 3:
        raise invalid("level", "1, 2 or 3")
    row = await res.db.fetchrow(
        """UPDATE orgs.mask_fields SET level = $2, label = coalesce($3, label), updated_at = now()
           WHERE field = $1 RETURNING field, label, level, rule""",
        field,
        data.level,
        data.label,
    )
    if row is None:
        raise invalid("field", "not in the masking catalogue")
    await audit.record(
        res.db, actor=f"admin:{p.username}", action="masking.edit", target=field, detail={"level": data.level}
    )
    return MaskField(field=row["field"], label=row["label"], level=row["level"], rule=row["rule"])
