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
    by_weekday_hour: list[list[int]] = Field(
        min_length=7,
        max_length=7,
        description="7 rows (Monday first) of 24 counts (index = local hour): the weekday x hour"
        " heat map, whose rows add up to by_weekday and columns to by_hour",
    )
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


class ByEndedReason(StatsBase):
    """Ended conversations by ended reason: every reason, zeros included."""

    customer_ended_call: int = Field(alias="customer-ended-call")
    agent_ended_call: int = Field(alias="agent-ended-call")
    silence_timeout: int = Field(alias="silence-timeout")
    max_duration_reached: int = Field(alias="max-duration-reached")
    transferred: int
    voicemail: int
    no_answer: int = Field(alias="no-answer")
    busy: int
    failed_to_connect: int = Field(alias="failed-to-connect")
    error: int
    unknown: int = Field(description="Includes the conversations that ended without a reason")
    idle_timeout: int = Field(alias="idle-timeout")


class CurrencyCost(StatsBase):
    total: float = Field(description="Telephony's components plus the analysis cost")
    avg: float = Field(description="total / conversations, six decimals")
    conversations: int = Field(description="Ended conversations with a cost in this currency")


class OutcomeTotals(StatsBase):
    ended: int = Field(description="Conversations that ended (Completed or Failed)")
    analysed: int = Field(description="Ended conversations whose analysis is done")
    success_evaluated: int = Field(description="pass_fail verdicts")
    success_pass: int = Field(description="pass_fail verdicts that passed")
    success_rate: float | None = Field(
        description="success_pass / success_evaluated x 100, one decimal; null if none"
    )
    avg_score: float | None = Field(
        description="Mean of the score_1_10 verdicts, two decimals; null if none"
    )
    by_ended_reason: ByEndedReason
    cost_total: float | None = Field(
        description="Sum of the costs when they are in one currency (0 when none has a cost);"
        " null when several currencies occur (see cost_by_currency)"
    )
    cost_avg: float | None = Field(
        description="cost_total / conversations with a cost, six decimals; null if none or if"
        " several currencies occur"
    )
    currency: str | None = Field(
        description="The one currency of the costs; null if none, several, or not reported"
    )
    cost_by_currency: dict[str, CurrencyCost] = Field(
        description="Costs per currency ('unknown': analysis costs of conversations whose"
        " telephony cost was not reported)"
    )
    latency_p50_ms: int | None = Field(
        description="percentile_disc(0.5) of the output turns' latencies rounded down to 10 ms"
    )
    latency_p90_ms: int | None = Field(
        description="percentile_disc(0.9) of the output turns' latencies rounded down to 10 ms"
    )


class OutcomePoint(OutcomeTotals):
    period_start: date


class OutcomeStatistics(StatsBase):
    granularity: Granularity
    series: list[OutcomePoint]
    totals: OutcomeTotals
