"""App endpoints of push: the device's push addresses and the message centre (inbox)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from litestar import delete, get, post, put
from litestar.params import JSONBody, Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from bff.auth import SignedIn
from core.idempotency import IdempotencyKey, idempotent
from core.resources import Resources
from identity.facade import Principal
from push import service
from push.models import DeviceList, DeviceRegistration, DeviceView, InboxPage, UnreadCount

TopicPath = Annotated[str, Parameter(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]{1,64}$")]


class Devices(SignedIn):
    """This person's push addresses and their topics."""

    path = "/v1/push/devices"
    tags = ("push",)

    @post(
        summary="Register this device's push address (APNs or HarmonyOS token, or a phone for SMS)",
        status_code=201,
        middleware=[idempotent()],
    )
    async def register_device(
        self, res: Resources, me: Principal, data: JSONBody[DeviceRegistration], idempotency_key: IdempotencyKey = None
    ) -> DeviceView:
        return await service.register_device(res, me.person_id, data)

    @get(summary="My active push addresses")
    async def my_devices(self, res: Resources, me: Principal) -> DeviceList:
        return DeviceList(items=await service.list_devices(res, me.person_id))

    @delete("/{device_id:uuid}", summary="Unregister a push address")
    async def unregister_device(self, res: Resources, me: Principal, device_id: uuid.UUID) -> None:
        await service.unregister_device(res, me.person_id, device_id)

    @put(
        "/{device_id:uuid}/topics/{topic:str}",
        summary="Subscribe one of my devices to a topic (idempotent)",
        status_code=204,
    )
    async def subscribe_topic(self, res: Resources, me: Principal, device_id: uuid.UUID, topic: TopicPath) -> None:
        await service.subscribe_topic(res, me.person_id, device_id, topic)

    @delete("/{device_id:uuid}/topics/{topic:str}", summary="Unsubscribe one of my devices from a topic")
    async def unsubscribe_topic(self, res: Resources, me: Principal, device_id: uuid.UUID, topic: TopicPath) -> None:
        await service.unsubscribe_topic(res, me.person_id, device_id, topic)


class Messages(SignedIn):
    """The message centre (inbox): pages, the unread count, live events, read marks."""

    path = "/v1/messages"
    tags = ("messages",)

    @get(summary="My message centre, newest first")
    async def my_messages(
        self,
        res: Resources,
        me: Principal,
        cursor: Annotated[str | None, Parameter(max_length=200, pattern=r"^[A-Za-z0-9_-]*$")] = None,
        limit: Annotated[int, Parameter(ge=1, le=service.INBOX_PAGE_MAX)] = 20,
    ) -> InboxPage:
        return await service.inbox(res, me.person_id, cursor, limit)

    @get("/unread-count", summary="How many of my messages are unread")
    async def unread_count(self, res: Resources, me: Principal) -> UnreadCount:
        return UnreadCount(unread=await service.unread(res, me.person_id))

    @get(
        "/events",
        summary="Server-sent events: `unread` at once, then `message` {id, unread} as messages arrive",
        media_type="text/event-stream",
        response_description="an event stream (`event: unread|message`, `data: {...}`), heartbeat comments",
    )
    async def message_events(self, res: Resources, me: Principal) -> ServerSentEvent:
        async def events() -> AsyncIterator[ServerSentEventMessage]:
            async for event, data in service.inbox_events(res, me.person_id):
                if event:
                    yield ServerSentEventMessage(data=data, event=event)
                else:
                    yield ServerSentEventMessage(comment="heartbeat")

        return ServerSentEvent(events(), retry_duration=3000)

    @post("/{message_id:uuid}/read", summary="Mark a message read", status_code=204)
    async def mark_read(self, res: Resources, me: Principal, message_id: uuid.UUID) -> None:
        await service.mark_read(res, me.person_id, message_id)


ROUTES = [Devices, Messages]
