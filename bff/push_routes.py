"""App endpoints of push: the device's push addresses and the message centre (inbox)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import delete, get, post, put
from litestar.params import JSONBody, Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from bff.auth import principal
from core.auth import BEARER_REQUIRED
from core.idempotency import idempotent
from core.resources import Resources
from identity.facade import Principal
from push import service
from push.models import DeviceList, DeviceRegistration, DeviceView, InboxPage, UnreadCount

AUTH: dict[str, Any] = {"dependencies": {"me": principal}, "security": BEARER_REQUIRED}


@post(
    "/v1/push/devices",
    summary="Register this device's push address (APNs or HarmonyOS token, or a phone for SMS)",
    tags=["push"],
    status_code=201,
    middleware=[idempotent()],
    **AUTH,
)
async def register_device(res: Resources, me: Principal, data: JSONBody[DeviceRegistration]) -> DeviceView:
    return await service.register_device(res, me.person_id, data)


@get("/v1/push/devices", summary="My active push addresses", tags=["push"], **AUTH)
async def my_devices(res: Resources, me: Principal) -> DeviceList:
    return DeviceList(items=await service.list_devices(res, me.person_id))


@delete("/v1/push/devices/{device_id:uuid}", summary="Unregister a push address", tags=["push"], **AUTH)
async def unregister_device(res: Resources, me: Principal, device_id: uuid.UUID) -> None:
    await service.unregister_device(res, me.person_id, device_id)


TopicPath = Annotated[str, Parameter(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]{1,64}$")]


@put(
    "/v1/push/devices/{device_id:uuid}/topics/{topic:str}",
    summary="Subscribe one of my devices to a topic (idempotent)",
    tags=["push"],
    status_code=204,
    **AUTH,
)
async def subscribe_topic(res: Resources, me: Principal, device_id: uuid.UUID, topic: TopicPath) -> None:
    await service.subscribe_topic(res, me.person_id, device_id, topic)


@delete(
    "/v1/push/devices/{device_id:uuid}/topics/{topic:str}",
    summary="Unsubscribe one of my devices from a topic",
    tags=["push"],
    **AUTH,
)
async def unsubscribe_topic(res: Resources, me: Principal, device_id: uuid.UUID, topic: TopicPath) -> None:
    await service.unsubscribe_topic(res, me.person_id, device_id, topic)


@get("/v1/messages", summary="My message centre, newest first", tags=["messages"], **AUTH)
async def my_messages(
    res: Resources,
    me: Principal,
    cursor: Annotated[str | None, Parameter(max_length=200, pattern=r"^[A-Za-z0-9_-]*$")] = None,
    limit: Annotated[int, Parameter(ge=1, le=service.INBOX_PAGE_MAX)] = 20,
) -> InboxPage:
    return await service.inbox(res, me.person_id, cursor, limit)


@get("/v1/messages/unread-count", summary="How many of my messages are unread", tags=["messages"], **AUTH)
async def unread_count(res: Resources, me: Principal) -> UnreadCount:
    return UnreadCount(unread=await service.unread(res, me.person_id))


@get(
    "/v1/messages/events",
    summary="Server-sent events: `unread` at once, then `message` {id, unread} as messages arrive",
    tags=["messages"],
    media_type="text/event-stream",
    response_description="an event stream (`event: unread|message`, `data: {...}`), heartbeat comments",
    **AUTH,
)
async def message_events(res: Resources, me: Principal) -> ServerSentEvent:
    async def events() -> AsyncIterator[ServerSentEventMessage]:
        async for event, data in service.inbox_events(res, me.person_id):
            if event:
                yield ServerSentEventMessage(data=data, event=event)
            else:
                yield ServerSentEventMessage(comment="heartbeat")

    return ServerSentEvent(events(), retry_duration=3000)


@post(
    "/v1/messages/{message_id:uuid}/read",
    summary="Mark a message read",
    tags=["messages"],
    status_code=204,
    **AUTH,
)
async def mark_read(res: Resources, me: Principal, message_id: uuid.UUID) -> None:
    await service.mark_read(res, me.person_id, message_id)


ROUTES = [
    register_device,
    my_devices,
    unregister_device,
    subscribe_topic,
    unsubscribe_topic,
    my_messages,
    unread_count,
    message_events,
    mark_read,
]
