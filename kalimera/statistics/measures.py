"""What a rollup row and a live conversation both count: the measures, kept in one place.

The rollup writes these columns and the reads sum them, from rollup rows and from live rows
alike, so both import them from here rather than the reads importing the rollup.
"""

from __future__ import annotations

import math
import operator
import sys
import uuid
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

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
    return round_to(value, TENTH)


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
            name: Decimal(row[name]) if name == "duration_sum" else int(row[name])
            for name in MEASURES
            if name in row
        }
        return cls(**values)

    def __add__(self, other: Sums) -> Sums:
        return Sums(**{name: getattr(self, name) + getattr(other, name) for name in MEASURES})

    @property
    def avg_duration(self) -> float | None:
        if not self.duration_count:
            return None
        return float(round1(self.duration_sum / self.duration_count))

    @property
    def unknown_sentiment(self) -> int:
        return self.total - self.positive - self.neutral - self.negative


# --- outcome statistics ---------------------------------------------------------------------

ENDED = "c.status IN ('Completed', 'Failed')"
"""The conversations the outcome statistics count: those that ended."""

REASONS = (
    "customer-ended-call",
    "agent-ended-call",
    "silence-timeout",
    "max-duration-reached",
    "transferred",
    "voicemail",
    "no-answer",
    "busy",
    "failed-to-connect",
    "error",
    "unknown",
    "idle-timeout",
)
"""Every ended reason of migration 0015's check, in its order; no reason counts as unknown."""

REASON_COLUMNS = {reason: "r_" + reason.replace("-", "_") for reason in REASONS}

_COST = " + ".join(
    f"coalesce((c.cost->>'{part}')::numeric, 0)"
    for part in ("telephony", "stt", "llm", "tts", "other")
)

OUTCOME_EXPRESSIONS = {
    "ended": "1",
    "analysed": "coalesce((c.analysis_status = 'done')::int, 0)",
    "evaluated": "coalesce((c.success_rubric = 'pass_fail')::int, 0)",
    "passed": "coalesce((c.success_rubric = 'pass_fail' AND c.success_result = 'pass')::int, 0)",
    "score_sum": "coalesce(c.success_score, 0)::int",
    "score_count": "(c.success_score IS NOT NULL)::int",
    **{
        column: f"(coalesce(c.ended_reason, 'unknown') = '{reason}')::int"
        for reason, column in REASON_COLUMNS.items()
    },
    "cost_sum": f"CASE WHEN c.cost IS NULL AND c.analysis_cost IS NULL THEN 0"
    f" ELSE {_COST} + coalesce(c.analysis_cost, 0) END",
    "cost_count": "(c.cost IS NOT NULL OR c.analysis_cost IS NOT NULL)::int",
}
"""One ended conversation ``c``'s contribution to each summable outcome column: the rollup sums
these, the live reads sum them too, so both count alike."""

OUTCOME_MEASURES = tuple(OUTCOME_EXPRESSIONS)
"""The summable columns of ``kalimera_stats_outcome_quarter`` and ``_day``."""

COST_MEASURES = ("cost_sum", "cost_count")
COUNTED = tuple(m for m in OUTCOME_MEASURES if m not in COST_MEASURES)
"""The outcome measures that are plain counts, in the order ``OutcomeSums.counts`` holds them."""

CURRENCY = "coalesce(c.cost->>'currency', '')"
"""The currency ``c``'s cost is counted in: telephony's ('' when it reported no cost)."""

HUNDREDTH = Decimal("0.01")
_LITTLE_ENDIAN = sys.byteorder == "little"
MILLIONTH = Decimal("0.000001")


class Histogram(NamedTuple):
    """Turn latencies: distinct ``values`` ascending and the running count of turns up to each
    (``cumulative``), as the rollup stores them (big-endian int4s, decoded by ``of``). A
    ``sign`` of -1 takes the turns away: a period counted from a whole UTC day row less the
    quarters of that day that lie in another period (``windows.PeriodPlan``). A named tuple: a
    year by day in a half-hour zone decodes some 17,000 of them a request."""

    values: array[int]
    cumulative: array[int]
    sign: int = 1

    @classmethod
    def of(cls, values: bytes, cumulative: bytes, sign: int = 1) -> Histogram:
        v, c = array("i"), array("i")
        v.frombytes(values)
        c.frombytes(cumulative)
        if _LITTLE_ENDIAN:
            v.byteswap()
            c.byteswap()
        return cls(v, c, sign)

    @property
    def turns(self) -> int:
        return self.sign * self.cumulative[-1] if self.cumulative else 0


def percentiles_disc(parts: list[Histogram], fractions: Sequence[float]) -> list[int | None]:
    """PostgreSQL's ``percentile_disc`` at each of ``fractions`` over the turns of all ``parts``
    (those with sign -1 taken away from the others): the value at row ``ceil(fraction * n)``
    (at least 1) in order, computed in floating point as PostgreSQL does, so the two agree on
    every count; None when there are no turns. The parts are gathered once for all fractions:
    a year by day asks two of each of 366 periods, and gathering them for each cost a fifth of
    the time."""
    parts = [p for p in parts if p.values]
    n = sum(p.turns for p in parts)
    if not n:
        return [None] * len(fractions)
    ranks = [max(1, math.ceil(fraction * n)) for fraction in fractions]
    if len(parts) == 1:
        values, cumulative = parts[0].values, parts[0].cumulative
        return [values[bisect_left(cumulative, rank)] for rank in ranks]

    # Each count runs over every part (a year by day counts some 12,000 times a request): the
    # parts' arrays bound once, bisect inlined, no method call or generator per part.
    arrays = [(p.values, p.cumulative, p.sign) for p in parts]

    def at_most(value: int) -> int:
        n = 0
        for values, cumulative, sign in arrays:
            i = bisect_right(values, value)
            if i:
                n += sign * cumulative[i - 1]
        return n

    added = [p for p in parts if p.sign > 0]
    if len(added) < len(parts):
        base = max(added, key=lambda p: p.turns)
        brackets = [_bracket(base, n, added, rank, at_most) for rank in ranks]
    else:
        brackets = [
            _mixture_bracket(parts, fraction, rank, at_most)
            for fraction, rank in zip(fractions, ranks, strict=True)
        ]
    out: list[int | None] = []
    for (lo, hi), rank in zip(brackets, ranks, strict=True):
        while lo < hi:
            mid = (lo + hi) // 2
            if at_most(mid) >= rank:
                hi = mid
            else:
                lo = mid + 1
        out.append(lo)
    return out


def _mixture_bracket(
    parts: list[Histogram], fraction: float, rank: int, at_most: Callable[[int], int]
) -> tuple[int, int]:
    """Where the percentile of parts that are all added lies: between the parts' own
    percentiles (a mixture's quantile lies between its parts'), widened to every value when
    floating-point ranks make that bracket miss."""
    own = [
        p.values[bisect_left(p.cumulative, max(1, math.ceil(fraction * p.turns)))] for p in parts
    ]
    lo, hi = min(own), max(own)
    if at_most(hi) < rank:
        hi = max(p.values[-1] for p in parts)
    if at_most(lo - 1) >= rank:
        lo = min(p.values[0] for p in parts)
    return lo, hi


def _bracket(
    base: Histogram, n: int, added: list[Histogram], rank: int, at_most: Callable[[int], int]
) -> tuple[int, int]:
    """Where the percentile lies when some parts are taken away (a local day as a UTC day less
    its tail plus the day before's): between two neighbouring values of the largest part,
    ``base``, found by galloping from the value at the same share of its own turns (of ``n``
    in all). That value is close to the answer, so this takes a few counts over all parts where
    a search over every latency took a dozen."""
    values = base.values
    guess = min(len(values) - 1, bisect_left(base.cumulative, rank * base.turns / n))
    # The first index whose value has rank turns at or below it: after `below`, at or before
    # `above` (len(values): none has).
    if at_most(values[guess]) >= rank:
        above, step = guess, 1
        below = guess - step
        while below >= 0 and at_most(values[below]) >= rank:
            above, step = below, 2 * step
            below = above - step
        below = max(below, -1)
    else:
        below, step = guess, 1
        above = guess + step
        while above < len(values) and at_most(values[above]) < rank:
            below, step = above, 2 * step
            above = below + step
        above = min(above, len(values))
    while above - below > 1:
        mid = (above + below) // 2
        if at_most(values[mid]) >= rank:
            above = mid
        else:
            below = mid
    lo = values[below] + 1 if below >= 0 else min(p.values[0] for p in added)
    hi = values[above] if above < len(values) else max(p.values[-1] for p in added)
    return lo, hi


@dataclass
class OutcomeSums:
    """The summed outcome measures of a set of ended conversations, costs by currency, and the
    latency histograms of their parts.

    ``counts`` is a list in ``COUNTED``'s order rather than a dict: a year by day adds some
    seven hundred rows of eighteen counts, on every request."""

    counts: list[int] = field(default_factory=lambda: [0] * len(COUNTED))
    latencies: list[Histogram] = field(default_factory=list)
    # The signed running (total, conversations) by currency, rows added and taken away in the
    # order they come: a count may pass through zero on the way (a local day's hours taken away
    # before its day row comes), so a currency leaves only at the end (``costs``).
    running_costs: dict[str, tuple[Decimal, int]] = field(default_factory=dict)

    @property
    def costs(self) -> dict[str, tuple[Decimal, int]]:
        """(total, conversations) by currency, of the currencies with a conversation left."""
        return {currency: c for currency, c in self.running_costs.items() if c[1]}

    def add_row(
        self,
        currency: str,
        counted: Sequence[int],
        cost_sum: Decimal,
        cost_count: int,
        sign: int = 1,
    ) -> None:
        """Add (``sign`` -1: take away) the summed measures of one currency: the ``COUNTED``
        values and the cost."""
        self.counts = list(map(operator.add if sign > 0 else operator.sub, self.counts, counted))
        if cost_count:
            self._add_cost(currency, sign * cost_sum, sign * cost_count)

    def _add_cost(self, currency: str, total: Decimal, n: int) -> None:
        mine = self.running_costs.get(currency)
        self.running_costs[currency] = (mine[0] + total, mine[1] + n) if mine else (total, n)

    def named_counts(self) -> dict[str, int]:
        return dict(zip(COUNTED, self.counts, strict=True))

    def add_counts(self, other: OutcomeSums) -> None:
        """Add ``other``'s counts and costs; not its latencies (a window's come from its rows
        net of the moved ones, ``repository.outcome_sums``)."""
        self.counts = list(map(operator.add, self.counts, other.counts))
        for currency, (total, n) in other.running_costs.items():
            self._add_cost(currency, total, n)


def round_to(value: Decimal, step: Decimal) -> Decimal:
    """``value`` to the decimals of ``step``, half away from zero, as PostgreSQL's ``round``."""
    return value.quantize(step, rounding=ROUND_HALF_UP)
