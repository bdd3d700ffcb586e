"""Local days: the time zone a query names (``tz``) and where its days begin in UTC.

The statistics and the conversation list both take local dates in ``tz``, so a chart's period
and the list behind it count the same conversations: one check of the zone, one midnight.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from kalimera.errors import invalid

ONE_DAY = timedelta(days=1)


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    # The names of the system tz database, which PostgreSQL reads too (checked: it accepts every
    # one): a name outside it never reaches the database.
    return frozenset(available_timezones())


def zone(tz: str) -> ZoneInfo:
    """The zone named ``tz``, or ``Invalid`` naming the ``tz`` query parameter."""
    msg = f"unknown time zone {tz!r}"
    if tz not in _zone_names():
        raise invalid(("query", "tz"), msg, detail=msg)
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid(("query", "tz"), msg, detail=msg) from None


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of local ``day`` in UTC (a midnight skipped by DST starts at the jump)."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def day_after(day: date, zone: ZoneInfo) -> datetime | None:
    """The first instant after local ``day`` in UTC; None past the last day there is."""
    if day == date.max:
        return None
    return local_midnight(day + ONE_DAY, zone)
