"""苏证通 Push: `create_app` builds the Litestar app mounted at `/push`.

Business systems (clients of kind `business`, client_secret_basic) send templated messages to users or to a
segment and read back the delivery status per recipient and channel.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Litestar, Request, get, post
from litestar.di import Provide
from litestar.openapi.spec import OpenAPIFormat, OpenAPIType, Schema
from litestar.params import JSONBody, Parameter

from core.app import build_app
from core.auth import BASIC, BASIC_REQUIRED
from core.idempotency import IdempotencyKey, idempotent
from core.problems import ProblemError
from core.resources import Resources
from core.settings import Settings
from identity.facade import Client, clients
from push import service
from push.models import MessageAccepted, MessageStatus, SendRequest

MOUNT = "push"
IdemKey = IdempotencyKey  # core.idempotency enforces the pattern; a retried send with the same key is not sent again


async def _business(request: Request[Any, Any, Any], res: Resources) -> Client:
    client = await clients.authenticate_basic(res, request.headers.get("authorization"))
    if client.kind != "business":
        raise ProblemError(403, "not-a-business-client", "Only business systems may send", "仅业务系统可发送消息")
    return client


AUTH: dict[str, Any] = {"dependencies": {"client": Provide(_business)}, "security": BASIC_REQUIRED}


@post(
    "/v1/messages",
    summary="Send a templated message to users or a segment (business systems)",
    tags=["messages"],
    status_code=202,
    middleware=[idempotent()],
    **AUTH,
)
async def send_message(
    res: Resources, client: Client, data: JSONBody[SendRequest], idempotency_key: IdemKey = None
) -> MessageAccepted:
    return await service.send(res, client.client_id, data, idempotency_key)


@get(
    "/v1/messages/{message_id:uuid}",
    summary="A message and its delivery status per recipient and channel",
    tags=["messages"],
    **AUTH,
)
async def message_status(
    res: Resources,
    client: Client,
    message_id: uuid.UUID,
    cursor: Annotated[str | None, Parameter(max_length=32, pattern=r"^[0-9a-f]{32}$")] = None,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 200,
) -> MessageStatus:
    return await service.message_status(res, client.client_id, message_id, cursor, limit)


def _document_items(app: Litestar) -> None:
    """Litestar drops the constraints of list items (tags, user ids) from the schema: copy them from msgspec's."""
    _, defs = msgspec.json.schema_components([SendRequest, MessageStatus], ref_template="#/components/schemas/{name}")
    schemas = app.openapi_schema.components.schemas or {}
    for name, spec in defs.items():
        target = schemas.get(name)
        if target is None or target.properties is None:
            continue
        for prop, prop_spec in spec.get("properties", {}).items():
            items = prop_spec.get("items")
            have = target.properties.get(prop)
            if isinstance(items, dict) and "type" in items and isinstance(have, Schema) and have.items is not None:
                have.items = Schema(
                    type=OpenAPIType(items["type"]),
                    min_length=items.get("minLength"),
                    max_length=items.get("maxLength"),
                    pattern=items.get("pattern"),
                    format=OpenAPIFormat(items["format"]) if "format" in items else None,
                    enum=items.get("enum"),
                )


def create_app(settings: Settings, resources: Resources | None = None) -> Litestar:
    app = build_app(
        MOUNT,
        settings=settings,
        title="苏证通 Push",
        description="One notification service for every channel.",
        route_handlers=[send_message, message_status],
        externals={
            "apns": f"{settings.simulators_url}/apns/healthz",
            "hms": f"{settings.simulators_url}/hms/healthz",
            "wechat": f"{settings.simulators_url}/wechat/healthz",
            "alipay": f"{settings.simulators_url}/alipay/healthz",
            "sms": f"{settings.simulators_url}/sms/healthz",
        },
        resources=resources,
        security_schemes=BASIC,
    )
    _document_items(app)
    return app
