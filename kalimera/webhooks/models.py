"""The webhook schema family: endpoints (the secret shown in ``WebhookCreated`` and
``WebhookSecret`` only), their deliveries, and the replay request."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

MAX_ENDPOINTS = 20


class EventType(StrEnum):
    CONVERSATION_STARTED = "conversation.started"
    CONVERSATION_ENDED = "conversation.ended"
    CONVERSATION_ANALYZED = "conversation.analyzed"
    RECORDING_REJECTED = "recording.rejected"
    CONTACTS_IMPORTED = "contacts.imported"
    WEBHOOK_TEST = "webhook.test"


Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
Events = Annotated[list[EventType], Field(max_length=len(EventType))]

_EXAMPLE_READ: dict[str, Any] = {
    "id": "0b6f6b2e-8d0c-4a55-9d6e-3f0f5a1d2c11",
    "url": "https://crm.example.com/hooks/kalimera",
    "events": ["conversation.ended", "conversation.analyzed"],
    "description": "CRM sync",
    "enabled": True,
    "disabled_reason": None,
    "previous_secret_expires_at": None,
    "created_at": "2026-12-01T09:00:00Z",
    "updated_at": "2026-12-01T09:00:00Z",
}
_EXAMPLE_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw1Sd7aTCu4ZY="  # noqa: S105 - an example


class WebhookCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://crm.example.com/hooks/kalimera",
                    "events": ["conversation.ended", "conversation.analyzed"],
                    "description": "CRM sync",
                }
            ]
        },
    )

    url: Url = Field(description="https, to a public address (http and local in development)")
    events: Events = Field(
        default_factory=list,
        description="The event types sent; empty or left out: every type, new ones included",
    )
    description: Description = ""
    enabled: bool = True


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"enabled": False}, {"events": ["conversation.ended"]}]},
    )

    url: Url | None = None
    events: Events | None = None
    description: Description | None = None
    enabled: bool | None = None


class WebhookRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE_READ]})

    id: uuid.UUID
    url: str
    events: list[EventType] = Field(description="Empty: every type")
    description: str
    enabled: bool
    disabled_reason: str | None = Field(
        None,
        description="Why Kalimera disabled it (410 Gone, five days of failures); null otherwise",
    )
    previous_secret_expires_at: datetime | None = Field(
        None,
        description="During a rotation: until when the previous secret signs beside the new one",
    )
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookRead):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{**_EXAMPLE_READ, "secret": _EXAMPLE_SECRET}]}
    )

    secret: str = Field(description="`whsec_` + base64 of 32 random bytes: shown this once")


class WebhookList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_EXAMPLE_READ]}]})

    items: list[WebhookRead]


class WebhookSecret(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"secret": _EXAMPLE_SECRET, "previous_secret_expires_at": "2026-12-02T09:00:00Z"}
            ]
        }
    )

    secret: str = Field(description="The new secret: shown this once")
    previous_secret_expires_at: datetime = Field(
        description="Until then the previous secret signs too (two signatures)"
    )


class WebhookDeleted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"message": "Webhook deleted"}]})

    message: str = "Webhook deleted"


class Accepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"message": "Queued for delivery", "deliveries": 1}]}
    )

    message: str = "Queued for delivery"
    deliveries: int = Field(description="How many deliveries were queued")


class Attempt(BaseModel):
    at: datetime
    status: int | None = Field(None, description="The receiver's HTTP status; null when none came")
    latency_ms: int
    error: str | None = Field(None, description="Why it failed (a timeout, a refused address…)")


DeliveryStatus = Literal["pending", "delivered", "failed"]

_EXAMPLE_DELIVERY: dict[str, Any] = {
    "id": "5f1c2d9e-2b3a-4c4d-8e5f-6a7b8c9d0e1f",
    "webhook_id": "msg_5f1c2d9e2b3a4c4d8e5f6a7b8c9d0e1f",
    "event_id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
    "event_type": "conversation.ended",
    "status": "delivered",
    "attempts": [
        {"at": "2026-12-01T09:00:01Z", "status": 503, "latency_ms": 84, "error": "HTTP 503"},
        {"at": "2026-12-01T09:00:07Z", "status": 200, "latency_ms": 61, "error": None},
    ],
    "next_attempt_at": None,
    "created_at": "2026-12-01T09:00:00Z",
}


class DeliveryRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE_DELIVERY]})

    id: uuid.UUID
    webhook_id: str = Field(description="The `webhook-id` header: the same on every retry")
    event_id: uuid.UUID
    event_type: EventType
    status: DeliveryStatus
    attempts: list[Attempt]
    next_attempt_at: datetime | None = Field(None, description="While pending: the next try")
    created_at: datetime


class DeliveryPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [_EXAMPLE_DELIVERY], "total": 1, "page": 1, "limit": 20}]
        }
    )

    items: list[DeliveryRead]
    total: int
    page: int
    limit: int


class ReplayRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"since": "2026-12-01T00:00:00Z"}]}
    )

    since: AwareDatetime = Field(description="RFC 3339, with a time zone")
