"""What a rollup row and a live conversation both count: the measures, kept in one place.

The rollup writes these columns and the reads sum them, from rollup rows and from live rows
alike, so both import them from here rather than the reads importing the rollup.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

ALL_AGENTS = uuid.UUID(int=0)
"""The ``agent_id`` of a rollup row that counts every agent of the tenant."""

MEASURES = (
    "total",
    "inbound",
    "completed",
    "failed",
    "positive",
    "neutral",
    "negative",
    "duration_sum",
    "duration_count",
    "d_0_30",
    "d_30_60",
    "d_1_3",
    "d_3_5",
    "d_5_10",
)
"""The summable columns of ``kalimera_stats_quarter``, ``_hour`` and ``_rolled``, in order."""

TENTH = Decimal("0.1")


def round1(value: Decimal) -> Decimal:
    """One decimal, half away from zero, as PostgreSQL's ``round(numeric, 1)``."""
    return value.quantize(TENTH, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Sums:
    """The summed measures of a set of conversations (a period, a local hour, a window)."""

    total: int = 0
    inbound: int = 0
    completed: int = 0
    failed: int = 0
    positive: int = 0
    neutral: int = 0
    negative: int = 0
    duration_sum: Decimal = Decimal(0)
    duration_count: int = 0
    d_0_30: int = 0
    d_30_60: int = 0
    d_1_3: int = 0
    d_3_5: int = 0
    d_5_10: int = 0

    @classmethod
    def of(cls, row: dict[str, Any]) -> Sums:
        values: dict[str, Any] = {
            f.name: Decimal(row[f.name]) if f.name == "duration_sum" else int(row[f.name])
            for f in fields(cls)
            if f.name in row
        }
        return cls(**values)

    def __add__(self, other: Sums) -> Sums:
        return Sums(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    @property
    def avg_duration(self) -> float | None:
        if not self.duration_count:
            return None
        return float(round1(self.duration_sum / self.duration_count))

    @property
    def unknown_sentiment(self) -> int:
        return self.total - self.positive - self.neutral - self.negative
