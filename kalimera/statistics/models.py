"""Statistics request and response shapes (``statistics.md`` fixes every key)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
"""A timestamp answered as RFC 3339 in UTC (``...Z``) whatever the session time zone."""


class Granularity(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class StatsBase(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class Realtime(StatsBase):
    active_inbound: int
    active_outbound: int
    active_total: int
    as_of: UtcDatetime


class HistoryPoint(StatsBase):
    period_start: date
    inbound: int
    outbound: int
    total: int
    completed: int
    failed: int
    total_duration: float = Field(description="Seconds; a null duration adds 0")
    avg_duration: float | None = Field(
        description="total_duration / conversations with a duration, one decimal; null if none"
    )


class History(StatsBase):
    granularity: Granularity
    series: list[HistoryPoint]


class SentimentCounts(StatsBase):
    positive: int
    neutral: int
    negative: int
    unknown: int


class SentimentPoint(SentimentCounts):
    period_start: date
    total: int


class SentimentPercentages(StatsBase):
    positive: float
    neutral: float
    negative: float
    unknown: float


class SentimentStatistics(SentimentCounts):
    total: int
    percentages: SentimentPercentages
    series: list[SentimentPoint]


class ByStatus(StatsBase):
    Active: int
    Completed: int
    Failed: int


class ByProfileType(StatsBase):
    inbound: int
    outbound: int


class ByDurationBucket(StatsBase):
    d_0_30: int = Field(alias="0-30s")
    d_30_60: int = Field(alias="30-60s")
    d_1_3: int = Field(alias="1-3m")
    d_3_5: int = Field(alias="3-5m")
    d_5_10: int = Field(alias="5-10m")
    d_10: int = Field(alias="10m+")
    unknown: int


class CallBreakdown(StatsBase):
    by_status: ByStatus
    by_profile_type: ByProfileType
    by_hour: list[int] = Field(min_length=24, max_length=24, description="Index = local hour")
    by_weekday: list[int] = Field(min_length=7, max_length=7, description="Monday first")
    by_duration_bucket: ByDurationBucket
    by_language: dict[str, int] = Field(description="A null language counts as 'unknown'")
    avg_duration: float | None
    total: int


class ConversationLog(StatsBase):
    id: uuid.UUID
    agent_id: uuid.UUID
    title: str
    status: str
    profile_type: str
    instance_id: uuid.UUID | None
    from_number: str | None
    to_number: str | None
    language: str | None
    duration: float | None
    started_at: UtcDatetime
    ended_at: UtcDatetime | None
    last_activity_at: UtcDatetime
    sentiment: str
    sentiment_score: float | None
    turn_count: int
    created_at: UtcDatetime
    updated_at: UtcDatetime


class RecentLogs(StatsBase):
    items: list[ConversationLog]
