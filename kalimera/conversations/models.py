"""The conversation API's bodies and answers."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

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


class EndedReason(StrEnum):
    """Why a call ended. Telephony reports every one but ``idle-timeout``, which only the idle
    timer sets (a call nobody ended, finalised after ``KALIMERA_IDLE_MINUTES`` of silence)."""

    CUSTOMER_ENDED_CALL = "customer-ended-call"
    AGENT_ENDED_CALL = "agent-ended-call"
    SILENCE_TIMEOUT = "silence-timeout"
    MAX_DURATION_REACHED = "max-duration-reached"
    TRANSFERRED = "transferred"
    VOICEMAIL = "voicemail"
    NO_ANSWER = "no-answer"
    BUSY = "busy"
    FAILED_TO_CONNECT = "failed-to-connect"
    ERROR = "error"
    UNKNOWN = "unknown"
    IDLE_TIMEOUT = "idle-timeout"


IDLE_TIMEOUT = EndedReason.IDLE_TIMEOUT


class SuccessResult(StrEnum):
    """The verdict of an analysis plan's pass_fail success part."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password
    FAIL = "fail"


def _reported_reason(value: Any) -> Any:
    if value == IDLE_TIMEOUT.value:
        msg = "idle-timeout is set by the idle timer only"
        raise ValueError(msg)
    return value


ReportedEndedReason = Annotated[
    EndedReason,
    BeforeValidator(_reported_reason),
    Field(description="Why the call ended, as telephony saw it (not idle-timeout: the timer's)"),
]
MAX_LATENCY_MS = 3_600_000  # an hour: anything longer is not a turn's latency
LatencyMs = Annotated[int, Field(ge=0, le=MAX_LATENCY_MS)]
Amount = Annotated[float, Field(ge=0, le=1_000_000_000, allow_inf_nan=False)]
COST_COMPONENTS = ("telephony", "stt", "llm", "tts", "other")


class ConversationBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL: refuse it here (422) rather than fail at the INSERT.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class CallCost(ConversationBase):
    """What a call cost, as telephony reports it: each component in ``currency``; an absent
    component is 0. Reported again, it replaces the stored one whole."""

    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. EUR")]
    telephony: Amount = 0
    stt: Amount = 0
    llm: Amount = 0
    tts: Amount = 0
    other: Amount = 0

    def stored(self) -> str:
        """The JSON the ``cost`` column holds (and the blob's metadata carries)."""
        return self.model_dump_json()


class ConversationCost(BaseModel):
    """The conversation's cost: telephony's components, and their ``total`` with the post-call
    analysis's cost (``analysis.cost``) added."""

    currency: str
    telephony: float
    stt: float
    llm: float
    tts: float
    other: float
    total: float = Field(description="The sum of the components and of the analysis's cost")

    @model_validator(mode="before")
    @classmethod
    def _total(cls, value: Any) -> Any:
        if isinstance(value, dict) and "total" not in value:
            # Summed as decimals, so 0.1 + 0.2 is 0.3; ``analysis`` is the analysis's cost.
            parts = {name: value.get(name, 0) for name in COST_COMPONENTS}
            spent = [*parts.values(), value.get("analysis") or 0]
            total = sum((Decimal(str(v)) for v in spent), Decimal(0))
            return {
                **{k: v for k, v in value.items() if k != "analysis"},
                **parts,
                "total": float(total),
            }
        return value


class ConversationAnalysis(BaseModel):
    """The post-call analysis (docs/analysis.md, "Results"): ``pending`` until it is in, then
    ``done``, ``failed`` (with ``error``) or ``skipped`` (with ``reason``, e.g. ``no model
    configured``). The parts the plan leaves out are null."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "done",
                    "plan_version": 3,
                    "summary": "The caller booked a table for four on 24 December at 20:00.",
                    "success": {"result": "pass", "rationale": "A table was booked."},
                    "data": {"party_size": 4, "date": "2026-12-24", "intent": "booking"},
                    "sentiment": {"label": "positive", "score": 0.8},
                    "model": "gpt-4.1-mini",
                    "input_tokens": 2310,
                    "output_tokens": 164,
                    "cost": 0.0012,
                    "analysed_at": "2026-12-01T06:10:00Z",
                    "error": None,
                    "reason": None,
                }
            ]
        }
    )

    status: Literal["pending", "done", "failed", "skipped"]
    plan_version: int | None = None
    summary: str | None = None
    success: dict[str, Any] | None = Field(None, description='{"result", "rationale"}')
    data: dict[str, Any] | None = Field(None, description="The fields of the plan's schema")
    sentiment: dict[str, Any] | None = Field(None, description='{"label", "score"}')
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = Field(None, description="In the tenant's currency")
    analysed_at: datetime | None = None
    error: str | None = None
    reason: str | None = None


class ConversationLatency(BaseModel):
    """How fast the agent answered, over the output turns that report ``latency_ms``."""

    p50_ms: int | None = Field(description="percentile_disc(0.5), values rounded down to 10 ms")
    p90_ms: int | None = Field(description="percentile_disc(0.9), values rounded down to 10 ms")
    max_ms: int | None = Field(description="The largest, exact")
    turns: int = Field(description="Output turns with a latency")


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
    ended_reason: ReportedEndedReason | None = None
    cost: CallCost | None = Field(None, description="Replaces the stored cost whole")


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
    input_file_url: str | None = Field(
        description="The latest caller recording: a signed, read-only download URL valid 15 "
        "minutes or more (as a turn's audio_url)"
    )
    output_file_url: str | None = Field(
        description="The latest agent recording: a signed, read-only download URL valid 15 "
        "minutes or more"
    )
    conversation_url: str | None = Field(
        description="Always null: recordings are kept per turn (the turns' audio_url), not "
        "for the whole call; kept for the seed's clients"
    )
    started_at: datetime
    ended_at: datetime | None
    last_activity_at: datetime
    sentiment: SentimentLabel
    sentiment_score: float | None
    turn_count: int
    ended_reason: EndedReason | None
    cost: ConversationCost | None = Field(description="null until telephony reports it")
    latency: ConversationLatency
    analysis: ConversationAnalysis | None = Field(
        None, description="null until the call ends (or while no analysis was asked for)"
    )
    contact_id: int | None = Field(
        description="The tenant's contact whose number (E.164) is the caller's on an inbound "
        "call, the callee's on an outbound one; null when none is"
    )
    created_at: datetime
    updated_at: datetime

    @field_validator("duration", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        return None if value is None else float(value)

    @model_validator(mode="before")
    @classmethod
    def _latency(cls, value: Any) -> Any:
        # A row carries the summary as columns (latency_p50_ms, ...): gather them.
        if isinstance(value, dict) and "latency" not in value:
            value = dict(value)
            value["latency"] = {
                "p50_ms": value.pop("latency_p50_ms", None),
                "p90_ms": value.pop("latency_p90_ms", None),
                "max_ms": value.pop("latency_max_ms", None),
                "turns": value.pop("latency_turns", 0),
            }
        if isinstance(value, dict) and "analysis_cost" in value:
            value = dict(value)
            spent = value.pop("analysis_cost")
            if isinstance(value.get("cost"), dict):
                value["cost"] = {**value["cost"], "analysis": spent or 0}
        return value


class Turn(BaseModel):
    seq: int
    direction: Direction = Field(description="input = the caller, output = the agent")
    recorded_at: datetime
    duration: float
    transcript: str | None
    latency_ms: int | None = Field(
        None, description="Output turns: the agent's answer latency, as telephony reported it"
    )
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


RETENTION_DAYS_MAX = 3650  # ten years: the CHECK of kalimera_retention (migration 0024)
RetentionDays = Annotated[int, Field(strict=True, ge=1, le=RETENTION_DAYS_MAX)]


class RetentionUpdate(BaseModel):
    """The tenant's retention: its conversations older than ``days`` are erased, with their
    recordings and history, by the timer; ``null`` keeps them until deleted."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"days": 365}]})

    days: RetentionDays | None = Field(
        description="Days a conversation is kept after it started (1 to 3650), or null: forever"
    )


class RetentionRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"days": 365, "updated_at": "2026-12-01T09:00:00Z", "due": 42}]
        }
    )

    days: int | None = Field(description="The retention in days, or null: kept until deleted")
    updated_at: datetime | None = Field(description="When it was last set")
    due: int = Field(
        description="How many conversations this retention would erase now (the dry-run count)"
    )


class ErasureRead(BaseModel):
    """One erasure, as the log keeps it: counts, why and who; never what was erased."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reason": "api",
                    "token_id": "0b3f7c1e-2d4a-4f5b-9c8d-7e6f5a4b3c2d",
                    "conversations": 1,
                    "recordings": 6,
                    "erased_at": "2026-12-01T09:00:00Z",
                }
            ]
        }
    )

    reason: Literal["api", "contact", "retention"] = Field(
        description="api: a DELETE; contact: a contact deleted with its calls; retention: the timer"
    )
    token_id: uuid.UUID | None = Field(description="The token that asked; null for the timer")
    conversations: int
    recordings: int
    erased_at: datetime


class ErasureLog(BaseModel):
    items: list[ErasureRead] = Field(description="Newest first")
