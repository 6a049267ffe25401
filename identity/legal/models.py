"""Request and response shapes of legal persons: enterprises, handlers (经办人), agents for elders (代理人)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from identity.models import IdNumber, Name

# GB 32100 alphabet and layout (registration authority, organisation type, 6-digit region, 9-character body, check);
# the MOD 31 check character itself is verified by the service (422, field `uscc`).
Uscc = Annotated[
    str,
    Meta(
        pattern=r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$",
        description="unified social credit code (统一社会信用代码, GB 32100), 18 characters",
        examples=["91320594MA1WQR2K37"],
    ),
]
EnterpriseName = Annotated[
    str, Meta(min_length=1, max_length=100, pattern=r"^[^\x00-\x20<>][^\x00-\x1f<>]*$", description="as registered")
]
Wangha = Annotated[str, Meta(pattern=r"^[0-9A-HJKMNPQRSTVWXY]{10}$", description="网号 of an enrolled person")]
LegalScope = Literal["affairs.submit", "affairs.view", "eseal.sign", "login"]
LEGAL_SCOPES: tuple[str, ...] = ("affairs.submit", "affairs.view", "eseal.sign", "login")
Scopes = Annotated[list[LegalScope], Meta(min_length=1, max_length=4, description="duplicates are ignored")]
AwareDateTime = Annotated[datetime, Meta(tz=True)]
CURSOR_PATTERN = r"^\d{1,16}\.[0-9a-f]{32}$"  # opaque to clients: microseconds since the epoch, then an id
Role = Literal["representative", "handler"]


class EnterpriseRequest(msgspec.Struct):
    """Register an enterprise; the signed-in person is its legal representative, named as the enterprise registered."""

    uscc: Uscc
    name: EnterpriseName
    representative_name: Name
    representative_id_number: IdNumber


class EnterpriseView(msgspec.Struct):
    id: str
    uscc: str
    name: str
    role: Role
    representative_wangha: str
    representative_name_masked: str
    scopes: list[str]
    valid_until: str | None
    created_at: str


class EnterpriseList(msgspec.Struct):
    items: list[EnterpriseView]
    next_cursor: str | None


class HandlerGrant(msgspec.Struct):
    """Authorise an enrolled person as a handler until `valid_until` (in the future, at most one year ahead)."""

    wangha: Wangha
    scopes: Scopes
    valid_until: AwareDateTime


class HandlerView(msgspec.Struct):
    id: str
    enterprise_id: str
    wangha: str
    name_masked: str
    scopes: list[str]
    valid_until: str
    created_at: str
    revoked_at: str | None
    active: bool


class HandlerList(msgspec.Struct):
    items: list[HandlerView]
    next_cursor: str | None


class AgentGrant(msgspec.Struct):
    """An elder (60+) lets an enrolled person act on their behalf for `days` days from now."""

    agent_wangha: Wangha
    scopes: Scopes
    days: Annotated[int, Meta(ge=1, le=90)]


class AgentView(msgspec.Struct):
    id: str
    role: Literal["elder", "agent"]
    elder_wangha: str
    elder_name_masked: str
    agent_wangha: str
    agent_name_masked: str
    scopes: list[str]
    valid_from: str
    valid_until: str
    created_at: str
    revoked_at: str | None
    active: bool


class AgentList(msgspec.Struct):
    items: list[AgentView]
    next_cursor: str | None


class ElderView(msgspec.Struct):
    wangha: str
    name_masked: str
    id_number_masked: str
    age_band: str


class AgentPrincipal(msgspec.Struct):
    """Whom the agent acts for (masked) and what the agent may do, while the grant is active."""

    agent_id: str
    elder: ElderView
    scopes: list[str]
    valid_from: str
    valid_until: str
