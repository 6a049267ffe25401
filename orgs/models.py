"""Organisations, administrators and roles: the shapes other domains and the admin front door share."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

Level = Literal["province", "city", "county", "station"]
Scope = Literal["own", "subtree", "all"]


class AdminPrincipal(msgspec.Struct, frozen=True):
    """A signed-in administrator as every guard and domain check sees it (docs/contracts.md)."""

    id: uuid.UUID
    username: str
    org_id: uuid.UUID
    org_path: str
    org_level: str
    region_code: str
    data_scope: str
    permissions: frozenset[str]
    roles: tuple[str, ...]
    mask_level: int = 0

    def has(self, permission: str) -> bool:
        return permission in self.permissions or "*" in self.permissions


Username = Annotated[str, msgspec.Meta(min_length=3, max_length=32, pattern=r"^[a-z][a-z0-9_.-]{2,31}$")]
Password = Annotated[str, msgspec.Meta(min_length=10, max_length=128)]
Totp = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$")]
OrgCode = Annotated[str, msgspec.Meta(min_length=2, max_length=40, pattern=r"^[0-9a-z-]{2,40}$")]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Reason = Annotated[str, msgspec.Meta(max_length=500)]
Phone = Annotated[str, msgspec.Meta(pattern=r"^1[3-9][0-9]{9}$")]
RoleCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_-]{1,40}$")]


class SignIn(msgspec.Struct):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    totp: Totp | None = None


class SessionToken(msgspec.Struct):
    access_token: str
    token_type: str
    expires_in: int
    username: str
    permissions: list[str]


class Org(msgspec.Struct):
    id: uuid.UUID
    code: str
    name: str
    level: str
    kind: str
    police_type: str | None
    region_code: str
    parent_id: uuid.UUID | None
    path: str
    status: str
    created_at: datetime


class OrgPage(msgspec.Struct):
    items: list[Org]
    next_cursor: str | None


class Role(msgspec.Struct):
    id: uuid.UUID
    code: str
    name: str
    org_id: uuid.UUID | None
    builtin: bool
    data_scope: str
    mask_level: int
    permissions: list[str]
    created_at: datetime


class RolePage(msgspec.Struct):
    items: list[Role]
    next_cursor: str | None


class NewRole(msgspec.Struct):
    code: RoleCode
    name: Text
    org_code: OrgCode
    data_scope: Scope
    permissions: Annotated[list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(max_length=200)]
    mask_level: Annotated[int, msgspec.Meta(ge=0, le=3)] = 0


class RoleUpdate(msgspec.Struct):
    """A custom role's new name, permissions, data scope and masking level (never more than the editor holds)."""

    name: Text
    data_scope: Scope
    permissions: Annotated[list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(max_length=200)]
    mask_level: Annotated[int, msgspec.Meta(ge=0, le=3)] = 0


class Admin(msgspec.Struct):
    id: uuid.UUID
    username: str
    display_name: str
    phone: str | None
    org_id: uuid.UUID
    org_path: str
    status: str
    totp_enabled: bool
    qr_bound: bool
    roles: list[str]
    review_reason: str
    created_at: datetime


class AdminPage(msgspec.Struct):
    items: list[Admin]
    next_cursor: str | None


class AdminRegistration(msgspec.Struct):
    """Self-registration (status pending until an administrator of the organisation or above approves)."""

    username: Username
    password: Password
    display_name: Text
    org_code: OrgCode
    phone: Phone | None = None
    roles: Annotated[list[Annotated[str, msgspec.Meta(max_length=41)]], msgspec.Meta(max_length=10)] = []


class Review(msgspec.Struct):
    decision: Literal["approve", "reject"]
    reason: Reason = ""
    version: Annotated[int, msgspec.Meta(ge=1)] | None = None  # optimistic lock: the version the reviewer saw


class RoleAssignment(msgspec.Struct):
    roles: Annotated[list[Annotated[str, msgspec.Meta(max_length=41)]], msgspec.Meta(max_length=10)]


class PermissionInfo(msgspec.Struct):
    code: str
    name: str
    menu: str
    kind: str  # menu | button


class PermissionList(msgspec.Struct):
    items: list[PermissionInfo]


class Document(msgspec.Struct):
    id: uuid.UUID
    filename: str
    content_type: str
    size: int
    sm3: str
    created_at: datetime


class OrgApplication(msgspec.Struct):
    id: uuid.UUID
    code: str
    name: str
    parent_code: str
    parent_path: str
    level: str
    kind: str
    police_type: str | None
    region_code: str
    contact_name: str
    contact_phone: str
    status: str
    reason: str
    version: int
    documents: list[Document]
    created_at: datetime


class OrgApplicationPage(msgspec.Struct):
    items: list[OrgApplication]
    next_cursor: str | None


class NewOrgApplication(msgspec.Struct):
    code: OrgCode
    name: Text
    parent_code: OrgCode
    kind: Literal["bureau", "police_type", "station"]
    contact_name: Text
    contact_phone: Phone
    police_type: Annotated[str, msgspec.Meta(max_length=10)] | None = None
