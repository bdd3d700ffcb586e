"""Which parts of a request's window the rollups answer and which are read live.

A request names local dates ``start``..``end`` in a zone ``tz``; that is one UTC interval
``[ws, we)`` (from local midnight to local midnight). It is split into UTC ranges:

- served by the 15-minute rollups: closed UTC days (before today) without a dirty mark, when the
  zone's offsets in the window are multiples of 15 minutes (each bucket then lies in one local
  hour, so local days, weeks, months, hours and weekdays come out exact);
- served live from ``kalimera_conversations``: everything else (dirty days, today, the future,
  and the whole window in a zone with odd offsets).

Languages are rolled up per UTC day (``kalimera_stats_rolled.languages``, ``agent_languages``),
so for them the partial UTC days at the window's edges are read live too. Pure date arithmetic:
the dirty marks it plans around are read by ``repository``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from kalimera.days import ONE_DAY, local_midnight
from kalimera.statistics.models import Granularity

QUARTER_SECONDS = 15 * 60

Range = tuple[datetime, datetime]


@dataclass(frozen=True)
class Window:
    """Local dates ``start``..``end`` in ``tz`` as the UTC interval ``[ws, we)``."""

    tz: str
    start: date
    end: date
    ws: datetime
    we: datetime
    aligned: bool
    hourly: bool

    @classmethod
    def of(cls, tz: str, start: date, end: date) -> Window:
        zone = ZoneInfo(tz)
        ws, we = local_midnight(start, zone), local_midnight(end + ONE_DAY, zone)
        # Sample the offset at every local midnight and noon of the window: all multiples of
        # 15 minutes means 15-minute buckets fall each in one local hour (tzdata has no DST
        # change off a 15-minute mark since local mean time was abandoned).
        offsets = set()
        day = start - ONE_DAY
        while day <= end + ONE_DAY:
            for moment in (time(), time(12)):
                offset = datetime.combine(day, moment, tzinfo=zone).utcoffset()
                offsets.add(offset.total_seconds() if offset is not None else 0.5)
            day += ONE_DAY
        return cls(
            tz=tz,
            start=start,
            end=end,
            ws=ws,
            we=we,
            aligned=all(o % QUARTER_SECONDS == 0 for o in offsets),
            hourly=all(o % 3600 == 0 for o in offsets),
        )


def utc_day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def subtract(outer: Range, holes: list[Range]) -> list[Range]:
    """``outer`` minus the (sorted, disjoint) ``holes``, as sorted disjoint ranges."""
    lo, hi = outer
    out: list[Range] = []
    for h_lo, h_hi in holes:
        if h_hi <= lo or h_lo >= hi:
            continue
        if h_lo > lo:
            out.append((lo, h_lo))
        lo = max(lo, h_hi)
    if lo < hi:
        out.append((lo, hi))
    return out


@dataclass(frozen=True)
class Plan:
    """Which UTC ranges of a window the rollups answer and which are read live."""

    rolled: list[Range]
    hours: list[Range]
    live: list[Range]
    language_days: list[tuple[date, date]]
    language_live: list[Range]
    clean: list[Range]
    """The closed UTC ranges without a dirty day, whatever the zone."""


def intersect(ranges: list[Range], days: list[date]) -> list[Range]:
    """The parts of ``ranges`` that lie in the UTC ``days``, merged, sorted."""
    out: list[Range] = []
    for day in sorted(set(days)):
        d_lo, d_hi = utc_day_start(day), utc_day_start(day) + ONE_DAY
        for lo, hi in ranges:
            lo, hi = max(lo, d_lo), min(hi, d_hi)
            if lo < hi:
                if out and out[-1][1] == lo:
                    out[-1] = (out[-1][0], hi)
                else:
                    out.append((lo, hi))
    return out


def plan(
    window: Window, *, dirty: list[date], now: datetime, busy: list[date] | None = None
) -> Plan:
    """Split the window: ``dirty`` are the tenant's dirty UTC days within it, ``busy`` its rolled
    up days with hour rows (used when the zone's offsets are whole hours)."""
    today = utc_day_start(now.astimezone(UTC).date())
    closed = (window.ws, max(window.ws, min(window.we, today)))
    holes = [(utc_day_start(d), utc_day_start(d) + ONE_DAY) for d in sorted(set(dirty))]
    clean = subtract(closed, holes)
    rolled = clean if window.aligned else []
    hours = intersect(rolled, busy or []) if window.hourly else []
    live = subtract((window.ws, window.we), rolled)
    rolled = [part for lo, hi in rolled for part in subtract((lo, hi), hours)]
    # Languages: whole UTC days only.
    language_days: list[tuple[date, date]] = []
    for lo, hi in clean:
        first = (lo + (-lo.timestamp() % 86400) * timedelta(seconds=1)).date()
        last = hi.date() - ONE_DAY  # hi is exclusive; whole days end at or before it
        if first <= last:
            language_days.append((first, last))
    whole = [(utc_day_start(a), utc_day_start(b) + ONE_DAY) for a, b in language_days]
    language_live = subtract((window.ws, window.we), whole)
    return Plan(
        rolled=rolled,
        hours=hours,
        live=live,
        language_days=language_days,
        language_live=language_live,
        clean=clean,
    )


def periods(window: Window, granularity: Granularity) -> list[date]:
    """The natural first day of every period that intersects the window."""
    if granularity is Granularity.DAY:
        first, step = window.start, None
    elif granularity is Granularity.WEEK:
        first, step = window.start - timedelta(days=window.start.weekday()), None
    else:
        first, step = window.start.replace(day=1), "month"
    out: list[date] = []
    day = first
    while day <= window.end:
        out.append(day)
        if step == "month":
            day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            day += timedelta(days=7 if granularity is Granularity.WEEK else 1)
    return out


@dataclass(frozen=True)
class OutcomePlan:
    """Which parts of a window the outcome rollups answer: whole clean UTC days lying in one
    local period (``days``: first day, last day, period start), the other clean parts from
    15-minute rows when the zone allows (``quarters``), the rest live."""

    days: list[tuple[date, date, date]]
    quarters: list[Range]
    live: list[Range]


def outcome_plan(window: Window, granularity: Granularity, p: Plan) -> OutcomePlan:
    """Split the window for the outcome statistics, period by period (see ``OutcomePlan``)."""
    zone = ZoneInfo(window.tz)
    starts = periods(window, granularity)
    days: list[tuple[date, date, date]] = []
    quarters: list[Range] = []
    for i, period in enumerate(starts):
        lo = local_midnight(max(period, window.start), zone)
        last = starts[i + 1] if i + 1 < len(starts) else window.end + ONE_DAY
        hi = local_midnight(min(last, window.end + ONE_DAY), zone)
        for c_lo, c_hi in p.clean:
            a, b = max(lo, c_lo), min(hi, c_hi)
            if a >= b:
                continue
            first = (a + (-a.timestamp() % 86400) * timedelta(seconds=1)).date()
            end = b.date()  # the day b falls on: whole days end before it (or at its midnight)
            if first < end:
                days.append((first, end - ONE_DAY, period))
                whole = (utc_day_start(first), utc_day_start(end))
                quarters += subtract((a, b), [whole])
            else:
                quarters.append((a, b))
    if not window.aligned:
        quarters = []
    served = sorted(quarters + [(utc_day_start(a), utc_day_start(b) + ONE_DAY) for a, b, _ in days])
    return OutcomePlan(
        days=days, quarters=quarters, live=subtract((window.ws, window.we), _merged(served))
    )


def _merged(ranges: list[Range]) -> list[Range]:
    """Sorted ranges with touching or overlapping ones joined."""
    out: list[Range] = []
    for lo, hi in ranges:
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out
