"""The conversation API's bodies and answers."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from kalimera.conversations.sentiment import SentimentLabel
from kalimera.profiles import ProfileType

# The columns' sizes (migrations/0004_conversations.sql), for the API's bodies and the
# recording contract (``recording``) alike.
PHONE_CHARS = 32
LANGUAGE_CHARS = 50
Phone = Annotated[str, Field(max_length=PHONE_CHARS)]
Language = Annotated[str, Field(max_length=LANGUAGE_CHARS)]


class Direction(StrEnum):
    INPUT = "input"  # the caller
    OUTPUT = "output"  # the agent


class ConversationStatus(StrEnum):
    ACTIVE = "Active"
    COMPLETED = "Completed"
    FAILED = "Failed"


class EndStatus(StrEnum):
    COMPLETED = "Completed"
    FAILED = "Failed"


class ConversationBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL: refuse it here (422) rather than fail at the INSERT.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class ConversationCreate(ConversationBase):
    """Telephony reports a call start."""

    agent_id: uuid.UUID
    profile_type: ProfileType
    id: uuid.UUID | None = None
    title: Annotated[str, Field(max_length=255)] = ""
    from_number: Phone | None = None
    to_number: Phone | None = None
    language: Language | None = None
    started_at: AwareDatetime | None = None
    instance_id: uuid.UUID | None = None


class ConversationUpdate(ConversationBase):
    """Telephony reports a call end, or a console renames it."""

    status: EndStatus | None = None
    ended_at: AwareDatetime | None = None
    title: Annotated[str, Field(max_length=255)] | None = None
    language: Language | None = None


class ConversationRead(BaseModel):
    id: uuid.UUID
    agent_id: uuid.UUID
    title: str
    status: ConversationStatus
    profile_type: ProfileType
    instance_id: uuid.UUID | None
    from_number: str | None
    to_number: str | None
    language: str | None
    duration: float | None = Field(description="Seconds: the sum of the turns' exact durations")
    input_file_url: str | None
    output_file_url: str | None
    conversation_url: str | None
    started_at: datetime
    ended_at: datetime | None
    last_activity_at: datetime
    sentiment: SentimentLabel
    sentiment_score: float | None
    turn_count: int
    created_at: datetime
    updated_at: datetime

    @field_validator("duration", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        return None if value is None else float(value)


class Turn(BaseModel):
    seq: int
    direction: Direction = Field(description="input = the caller, output = the agent")
    recorded_at: datetime
    duration: float
    transcript: str | None
    audio_url: str = Field(description="A signed, read-only download URL valid 15 minutes")


class ConversationDetail(ConversationRead):
    turns: list[Turn]


class ConversationPage(BaseModel):
    items: list[ConversationRead]
    total: int
    page: int
    limit: int


class VoiceStored(BaseModel):
    status: bool = True
    message: str = "Successfully stored."
    conversation_id: uuid.UUID
    blob: str = Field(description="The blob's name within the recordings container")


class VoiceUploadUrl(BaseModel):
    """Where and how to PUT one recording straight to Blob Storage."""

    url: str = Field(description="A SAS URL that can create this one blob and nothing else")
    blob: str = Field(description="The blob's name within the recordings container")
    conversation_id: uuid.UUID
    headers: dict[str, str] = Field(
        description="Send these with the PUT: the blob type, the Content-Type and the "
        "recording's metadata (x-ms-meta-*)"
    )
    expires_at: datetime = Field(description="The URL works until then (15 minutes)")
