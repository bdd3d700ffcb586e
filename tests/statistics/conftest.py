"""Statistics fixtures: write conversations with plain SQL, run the rollup, read ground truth."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from kalimera.services import Services
from kalimera.settings import Settings
from kalimera.statistics.rollup import RollupReport, run_rollup
from tests.conftest import run_async

COLUMNS = (
    "tenant_id",
    "id",
    "agent_id",
    "status",
    "profile_type",
    "language",
    "duration",
    "started_at",
    "ended_at",
    "last_activity_at",
    "sentiment",
    "ended_reason",
    "cost",
    "latency_rounded_ms",
    "analysis_status",
    "success_rubric",
    "success_result",
    "success_score",
    "analysis_cost",
)


@dataclass
class Conv:
    """One conversation row as the tests write it."""

    tenant_id: uuid.UUID
    agent_id: uuid.UUID
    started_at: datetime
    status: str = "Completed"
    profile_type: str = "inbound"
    language: str | None = "en"
    duration: Decimal | None = Decimal("60")
    sentiment: str = "neutral"
    last_activity_at: datetime | None = None
    ended_at: datetime | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    ended_reason: str | None = None
    cost: dict[str, Any] | None = None
    latencies: list[int] = field(default_factory=list)
    """Output turns' latencies, rounded down to 10 ms (latency_rounded_ms)."""
    analysis_status: str | None = None
    success_rubric: str | None = None
    success_result: str | None = None
    success_score: int | None = None
    analysis_cost: Decimal | None = None

    def values(self) -> tuple[Any, ...]:
        return (
            self.tenant_id,
            self.id,
            self.agent_id,
            self.status,
            self.profile_type,
            self.language,
            self.duration,
            self.started_at,
            self.ended_at,
            self.last_activity_at or self.started_at,
            self.sentiment,
            self.ended_reason,
            None if self.cost is None else Jsonb(self.cost),
            self.latencies,
            self.analysis_status,
            self.success_rubric,
            self.success_result,
            self.success_score,
            self.analysis_cost,
        )


class Db:
    """A synchronous connection for writing test rows and reading ground truth."""

    def __init__(self, url: str) -> None:
        # A client of the suite's PgBouncer in transaction mode, as the app is: a statement
        # prepared on one server connection is not there for the next run (tests/conftest.py).
        self.conn = psycopg.connect(
            url, autocommit=True, row_factory=dict_row, prepare_threshold=None
        )

    def insert(self, rows: Sequence[Conv]) -> None:
        if not rows:
            return
        with self.conn.cursor() as cur:
            # One statement for the batch, as ingestion's multi-row writes would be.
            placeholders = ", ".join(["(" + ", ".join(["%s"] * len(COLUMNS)) + ")"] * len(rows))
            cur.execute(
                f"INSERT INTO kalimera_conversations ({', '.join(COLUMNS)}) VALUES {placeholders}",  # noqa: S608
                [v for row in rows for v in row.values()],
            )

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, params or {})
        return cur.fetchall() if cur.description else []

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(scope="session")
def db(settings: Settings) -> Iterator[Db]:
    assert settings.database_url is not None
    conn = Db(settings.database_url.get_secret_value())
    yield conn
    conn.close()


def rollup(
    settings: Settings,
    *,
    today: date | None = None,
    through: datetime | None = None,
    batch_pairs: int = 2_000,
    workers: int = 1,
) -> RollupReport:
    """The nightly run, or with ``through`` the intraday one (today's days up to that quarter)."""

    async def work() -> RollupReport:
        services = Services(settings)
        try:
            return await run_rollup(
                await services.db(),
                idle_minutes=settings.idle_minutes,
                today=today,
                through=through,
                batch_pairs=batch_pairs,
                workers=workers,
            )
        finally:
            await services.aclose()

    return run_async(work())  # type: ignore[no-any-return]
