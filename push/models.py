"""Wire shapes of push: device registration, the send API, delivery status and the inbox."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import Meta


def phone_context(person_id: uuid.UUID | str) -> str:
    """The encryption context of a device's phone number (push.devices.phone_enc), bound to its person."""
    return f"push.devices.phone:{person_id}"


Platform = Literal["apns", "hms", "sms", "wechat", "alipay"]
Channel = Literal["apns", "hms", "sms", "wechat", "alipay", "inbox"]
CHANNELS: tuple[Channel, ...] = ("apns", "hms", "sms", "wechat", "alipay", "inbox")
Priority = Literal["high", "normal"]
DeliveryStatus = Literal["queued", "sending", "retry", "delivered", "failed"]

PHONE_PATTERN = r"^1[3-9][0-9]{9}$"
Phone = Annotated[str, Meta(min_length=11, max_length=11, pattern=PHONE_PATTERN, description="mainland mobile number")]
ApnsToken = Annotated[str, Meta(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$", description="APNs token, hex")]
HmsToken = Annotated[
    str, Meta(min_length=32, max_length=256, pattern=r"^[A-Za-z0-9_.:-]{32,256}$", description="Push Kit token")
]
AppVersion = Annotated[str, Meta(max_length=32, pattern=r"^[0-9A-Za-z.+-]{0,32}$")]
Locale = Annotated[str, Meta(min_length=2, max_length=16, pattern=r"^[a-z]{2}(-[A-Za-z0-9]{2,8})?$")]
Region = Annotated[
    str, Meta(min_length=6, max_length=6, pattern=r"^[0-9]{6}$", description="行政区划代码, e.g. 320500")
]
Tag = Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[a-z0-9_-]{1,32}$")]
Tags = Annotated[list[Tag], Meta(max_length=20)]
Short = Annotated[str, Meta(min_length=1, max_length=32)]
Text64 = Annotated[str, Meta(min_length=1, max_length=64)]
CollapseKey = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
MAX_RECIPIENTS = 1000
MAX_SEND_AHEAD = dt.timedelta(days=30)


# Device registration: one shape per platform, chosen by `platform`.
class _DeviceBase(msgspec.Struct, kw_only=True):
    app_version: AppVersion = ""
    locale: Locale = "zh-CN"
    region: Region | None = None
    tags: Tags = []


class ApnsDevice(_DeviceBase, tag_field="platform", tag="apns", kw_only=True):
    token: ApnsToken


class HmsDevice(_DeviceBase, tag_field="platform", tag="hms", kw_only=True):
    token: HmsToken


class SmsDevice(_DeviceBase, tag_field="platform", tag="sms", kw_only=True):
    phone: Phone


DeviceRegistration = ApnsDevice | HmsDevice | SmsDevice


class DeviceView(msgspec.Struct):
    id: uuid.UUID
    platform: Platform
    token: str | None
    phone: str | None = msgspec.field(default=None)  # masked
    app_version: str = ""
    locale: str = "zh-CN"
    region: str | None = None
    tags: list[str] = []
    active: bool = True
    created_at: dt.datetime | None = None


class DeviceList(msgspec.Struct):
    items: list[DeviceView]


# Send API
class UsersAudience(msgspec.Struct, tag_field="type", tag="users"):
    user_ids: Annotated[list[uuid.UUID], Meta(min_length=1, max_length=MAX_RECIPIENTS)]


AgeBand = Literal["0-13", "14-17", "18-29", "30-44", "45-59", "60+"]
TopicName = Annotated[
    str, Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]{1,64}$", description="e.g. traffic.320500")
]


class SegmentAudience(msgspec.Struct, tag_field="type", tag="segment", kw_only=True):
    """Every criterion given must hold. Region and tags are the device's; sex, age band and user type the
    person's (from identity)."""

    region: Region | None = None
    tags: Annotated[list[Tag], Meta(max_length=10, description="all of these tags")] = []
    sex: Literal["male", "female"] | None = None
    age_bands: Annotated[list[AgeBand], Meta(max_length=6, description="any of these age bands")] = []
    user_type: Literal["natural", "legal"] | None = None


class TopicAudience(msgspec.Struct, tag_field="type", tag="topic"):
    """Every device subscribed to the topic."""

    topic: TopicName


class CaseStatusParams(msgspec.Struct):
    case_no: Short
    status: Short


class AppointmentParams(msgspec.Struct):
    service: Text64
    time: Short
    place: Text64


class BroadcastParams(msgspec.Struct):
    title: Text64
    body: Annotated[str, Meta(min_length=1, max_length=500)]


class CaseStatus(msgspec.Struct, tag_field="template", tag="case_status"):
    params: CaseStatusParams


class AppointmentReminder(msgspec.Struct, tag_field="template", tag="appointment_reminder"):
    params: AppointmentParams


class Broadcast(msgspec.Struct, tag_field="template", tag="broadcast"):
    params: BroadcastParams


Content = CaseStatus | AppointmentReminder | Broadcast


HourMinute = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, Asia/Shanghai")]


class QuietHours(msgspec.Struct):
    """A send time inside [start, end) (Beijing time, may wrap midnight) is moved to `end`."""

    start: HourMinute
    end: HourMinute


class SendRequest(msgspec.Struct, kw_only=True):
    audience: UsersAudience | SegmentAudience | TopicAudience
    content: Content
    priority: Priority = "normal"
    ttl: Annotated[int, Meta(ge=0, le=2_419_200, description="seconds the message stays deliverable")] = 86_400
    collapse_key: CollapseKey | None = None
    send_at: Annotated[dt.datetime, Meta(tz=True, description="not more than 30 days ahead")] | None = None
    quiet_hours: QuietHours | None = None
    channels: Annotated[list[Channel], Meta(min_length=1, max_length=6)] = msgspec.field(
        default_factory=lambda: list(CHANNELS)
    )


class MessageAccepted(msgspec.Struct):
    id: uuid.UUID
    send_at: dt.datetime
    duplicate: bool = False


class DeliveryView(msgspec.Struct):
    person_id: uuid.UUID
    device_id: uuid.UUID
    channel: Channel
    status: DeliveryStatus
    attempts: int
    error: str
    updated_at: dt.datetime


class ChannelCount(msgspec.Struct):
    channel: Channel
    status: DeliveryStatus
    count: int


class MessageStatus(msgspec.Struct):
    id: uuid.UUID
    template: str
    title: str
    body: str
    status: Literal["scheduled", "fanned_out"]
    created_at: dt.datetime
    send_at: dt.datetime
    counts: list[ChannelCount]
    deliveries: list[DeliveryView]
    next_cursor: str | None = None


# Inbox
class InboxItem(msgspec.Struct):
    id: uuid.UUID
    template: str
    title: str
    body: str
    created_at: dt.datetime
    read: bool


class InboxPage(msgspec.Struct):
    items: list[InboxItem]
    next_cursor: str | None = None


class UnreadCount(msgspec.Struct):
    unread: int


# Delivery metrics (the administrators' view)
class ChannelMetrics(msgspec.Struct):
    channel: str
    delivered: int
    failed: int
    invalid: int
    retried: int
    dead_lettered: int
    queued: int  # entries waiting in the channel's stream
    dead_letters: int  # entries in its dead-letter stream
    latency_mean_seconds: float | None


class PushMetrics(msgspec.Struct):
    channels: list[ChannelMetrics]
    fanout_queued: int
    delayed: int  # retries and scheduled sends waiting for their time
