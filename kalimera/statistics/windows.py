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

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from kalimera.days import ONE_DAY, local_midnight
from kalimera.statistics.models import Granularity

QUARTER_SECONDS = 15 * 60
QUARTERS_A_WEEK = 7 * 96
TAIL_SECONDS = 1800
"""Tail rows start on every half hour: a local midnight in a whole- or half-hour zone (all but
a few: +05:45, +12:45) is then the start of one."""

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


def offsets(window: Window) -> list[tuple[datetime, int]]:
    """The window as stretches of one UTC offset: (first instant, offset in seconds), the first
    at ``ws``. A change of offset is found between two UTC midnights that differ, to the
    quarter hour (every change since local mean time falls on one, as ``Window.of`` checks)."""
    zone = ZoneInfo(window.tz)
    lo, hi = _epoch(window.ws), _epoch(window.we)

    def offset(at: int) -> int:
        delta = datetime.fromtimestamp(at, zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    out = [(lo, offset(lo))]
    at = lo
    while at < hi:
        if offset(at) != out[-1][1]:  # a change at midnight UTC
            out.append((at, offset(at)))
        step = min(hi, at - at % DAY_SECONDS + DAY_SECONDS)
        if offset(step - 1) == out[-1][1]:
            at = step
            continue
        # The first quarter with the new offset, between at (the old one) and step.
        a, b = at // QUARTER_SECONDS, -(-step // QUARTER_SECONDS)
        while b - a > 1:
            mid = (a + b) // 2
            if offset(mid * QUARTER_SECONDS) == out[-1][1]:
                a = mid
            else:
                b = mid
        at = b * QUARTER_SECONDS
        out.append((at, offset(at)))
    return [(_instant(start), off) for start, off in out]


def utc_day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def quarter_floor(at: datetime) -> datetime:
    """The last 15-minute boundary at or before ``at``, in UTC."""
    seconds = int(at.timestamp())
    return datetime.fromtimestamp(seconds - seconds % QUARTER_SECONDS, UTC)


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
    dirty: frozenset[date]
    busy: list[date]
    """The clean days with hour rows (``hours`` reads them where the zone's offsets are whole
    hours; ``period_plan`` reads the whole hours of their moved parts in any zone)."""
    today: datetime
    """The first instant that is not closed (midnight UTC)."""
    rolled_to: dict[date, datetime] = field(default_factory=dict)
    """Dirty days whose rollup rows are current up to a quarter boundary (an intraday run
    rolled them up and nothing before that instant changed since): read from the rollups before
    it, live after it."""


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
    window: Window,
    *,
    dirty: list[date],
    now: datetime,
    busy: list[date] | None = None,
    rolled_to: dict[date, datetime] | None = None,
) -> Plan:
    """Split the window: ``dirty`` are the tenant's dirty UTC days within it, ``busy`` its rolled
    up days with hour rows (used when the zone's offsets are whole hours), ``rolled_to`` the
    dirty days whose quarter rows are current up to an instant (``Plan.rolled_to``)."""
    today = utc_day_start(now.astimezone(UTC).date())
    closed = (window.ws, max(window.ws, min(window.we, today)))
    marked = frozenset(dirty)
    holes = [(utc_day_start(d), utc_day_start(d) + ONE_DAY) for d in sorted(marked)]
    clean = subtract(closed, holes)
    rolled_to = {d: cut for d, cut in (rolled_to or {}).items() if d in marked}
    rolled = clean if window.aligned else []
    busy = sorted(set(busy or []) - marked)
    hours = intersect(rolled, busy) if window.hourly else []
    if window.aligned:
        # The rolled-up start of each such day: quarter rows, never hour rows.
        partial = [(utc_day_start(d), cut) for d, cut in rolled_to.items()]
        rolled = sorted(
            (max(lo, window.ws), min(hi, window.we))
            for lo, hi in [*rolled, *partial]
            if max(lo, window.ws) < min(hi, window.we)
        )
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
        dirty=marked,
        busy=busy,
        today=today,
        rolled_to=rolled_to,
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
class Moved:
    """Rollup rows inside a UTC day that ``PeriodPlan`` counts whole in ``period`` but that lie
    outside it: taken out of ``period`` again, and counted in their own local period when
    ``kept`` (inside the window). ``lo`` and ``hi`` are epoch seconds: a year by day has 365 of
    them, sent on every request, and integers cost a fraction of timestamps to format."""

    lo: int
    hi: int
    period: date
    kept: bool


@dataclass(frozen=True)
class PeriodPlan:
    """Which rollup rows answer a window's local periods, and what is read live.

    A local day is never a whole UTC day outside UTC, so a UTC day that lies mostly in one local
    period is counted whole from its day row (``days``: first day, last day, period) and corrected
    by the rows of its quarters (or hours) that lie in another period (``moved``): counts and
    latency histograms can be subtracted as well as added. A local day in +05:30 is then a day
    row and 22 quarter rows instead of 96, in -05:00 a day row and 5 hour rows instead of 24. A
    clean UTC day that no period holds most of is read from its quarters or hours (``quarters``,
    ``hours``) as it lies; dirty days, today and the future are read live.

    With tail rows (``BusyRows``), a busy day's ``hours`` and ``moved_hours`` ranges each run
    to the end of their UTC day and name the one tail row that starts where they do."""

    days: list[tuple[date, date, date]]
    quarters: list[Range]
    hours: list[Range]
    moved_quarters: list[Moved]
    moved_hours: list[Moved]
    live: list[Range]


BusyRows = Literal["hours", "tails"] | None
"""What a read has for the busy days of ``Plan.busy`` besides quarter and day rows: hour rows
(``kalimera_stats_hour``: whole hours in whole-hour zones, and the whole hours of moved parts),
tail rows (``kalimera_stats_outcome_tail``: a UTC day from each of its half hours to its end)
or nothing."""


def period_plan(
    window: Window,
    granularity: Granularity,
    p: Plan,
    *,
    day_rows: bool = True,
    busy_rows: BusyRows = "hours",
) -> PeriodPlan:
    """Split the window for reads by local period (see ``PeriodPlan``). ``day_rows``: the read
    has day rows (an agent's history has none: every clean day is then read from its quarters);
    ``busy_rows``: what serves the busy days of ``p``.

    With tail rows a busy day that one local period boundary cuts is its day row, counted in
    the period of its start, less its tail from the boundary on (the tail row, and in a zone
    off the half hour the quarter before it), counted in the next period: two rows in any
    whole- or half-hour zone, where hour rows took up to twelve and quarters two more. The
    first day of a window that starts inside it is its tail alone."""
    starts = periods(window, granularity)
    zone = ZoneInfo(window.tz)
    # In epoch seconds: the loop below runs for every day of a window of up to three years, on
    # every request, and integer arithmetic costs a fraction of datetime's.
    ws, we, today = _epoch(window.ws), _epoch(window.we), _epoch(p.today)
    edges = [ws, *(_epoch(local_midnight(s, zone)) for s in starts[1:]), we]
    busy = set(p.busy) if busy_rows else set()
    tails = busy_rows == "tails" and window.aligned
    days: list[tuple[date, date, date]] = []
    direct: dict[bool, list[tuple[int, int]]] = {False: [], True: []}
    moved: dict[bool, list[tuple[int, int, date, bool]]] = {False: [], True: []}
    live: list[tuple[int, int]] = []
    j = 0
    day = window.ws.date()
    d0 = _epoch(utc_day_start(day))
    while d0 < we:
        d1 = d0 + DAY_SECONDS
        inside = (max(d0, ws), min(d1, we))
        if day in p.dirty or d1 > today:
            cut = _epoch(p.rolled_to[day]) if window.aligned and day in p.rolled_to else d0
            for x, y, ranges in (
                (inside[0], min(inside[1], cut), direct[False]),
                (max(inside[0], cut), inside[1], live),
            ):
                if x < y:
                    _append(ranges, (x, y))
        else:
            while edges[j + 1] <= d0:
                j += 1
            # A local day is 23 to 25 hours: at most two boundaries lie inside a UTC day.
            cuts = [e for e in edges[j : j + 3] if d0 < e < d1] if tails and day in busy else []
            if len(cuts) == 1:
                if d0 >= ws:
                    _extend_days(days, day, starts[j])
                    _moved_by_hours(moved, (cuts[0], d1, starts[j], cuts[0] < we), TAIL_SECONDS)
                else:
                    for a, b, tail in _hour_parts(cuts[0], d1, TAIL_SECONDS):
                        _append(direct[tail], (a, b))
                day += ONE_DAY
                d0 = d1
                continue
            # Hour rows of this day, if any: with tail rows a day cut twice reads quarters.
            by_hours = day in busy and busy_rows == "hours"
            # The period that holds most of the day, among those that meet it (a few at most).
            k, held = j, 0
            i = j
            while i < len(starts) and edges[i] < d1:
                share = min(edges[i + 1], d1) - max(edges[i], d0)
                if share > held:
                    k, held = i, share
                i += 1
            lo, hi = edges[k], edges[k + 1]
            if day_rows and (held == DAY_SECONDS or (window.aligned and 2 * held > DAY_SECONDS)):
                _extend_days(days, day, starts[k])
                for a, b in ((d0, lo), (hi, d1)):
                    # The day's part outside the period: out of the window, then in it.
                    for x, y, kept in (
                        (a, min(b, ws), False),
                        (max(a, ws), min(b, we), True),
                        (max(a, we), b, False),
                    ):
                        if x < y and by_hours:
                            _moved_by_hours(moved, (x, y, starts[k], kept))
                        elif x < y:
                            _append_moved(moved[False], (x, y, starts[k], kept))
            elif window.aligned:
                _append(direct[window.hourly and by_hours], inside)
            else:
                _append(live, inside)
        day += ONE_DAY
        d0 = d1
    return PeriodPlan(
        days=days,
        quarters=_ranges(direct[False]),
        hours=_ranges(direct[True]),
        moved_quarters=_moved(moved[False]),
        moved_hours=_moved(moved[True]),
        live=_ranges(live),
    )


DAY_SECONDS = 86_400


def _epoch(t: datetime) -> int:
    return int(t.timestamp())


def _instant(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _ranges(ranges: list[tuple[int, int]]) -> list[Range]:
    return [(_instant(a), _instant(b)) for a, b in ranges]


def _moved(moved: list[tuple[int, int, date, bool]]) -> list[Moved]:
    return [Moved(*m) for m in moved]


def _extend_days(days: list[tuple[date, date, date]], day: date, period: date) -> None:
    if days and days[-1][2] == period and days[-1][1] + ONE_DAY == day:
        days[-1] = (days[-1][0], day, period)
    else:
        days.append((day, day, period))


def _append(ranges: list[tuple[int, int]], part: tuple[int, int]) -> None:
    if ranges and ranges[-1][1] == part[0]:
        ranges[-1] = (ranges[-1][0], part[1])
    else:
        ranges.append(part)


def _moved_by_hours(
    moved: dict[bool, list[tuple[int, int, date, bool]]],
    m: tuple[int, int, date, bool],
    step: int = 3600,
) -> None:
    """A moved part of a day with hour rows (or tail rows, ``step`` their half hour): its whole
    UTC hours from those (a moved part lies in one local period, so each of its hours does
    too), the quarters at its edges from theirs."""
    for a, b, hours in _hour_parts(m[0], m[1], step):
        _append_moved(moved[hours], (a, b, *m[2:]))


def _hour_parts(lo: int, hi: int, step: int = 3600) -> list[tuple[int, int, bool]]:
    """``[lo, hi)`` as its quarters before the first whole hour (or ``step``), its whole hours
    and its quarters after them: (start, end, whether whole hours), the empty ones left out."""
    h0, h1 = -(-lo // step) * step, hi // step * step
    if h0 >= h1:
        return [(lo, hi, False)]
    parts = ((lo, h0, False), (h0, h1, True), (h1, hi, False))
    return [(a, b, hours) for a, b, hours in parts if a < b]


def _append_moved(out: list[tuple[int, int, date, bool]], m: tuple[int, int, date, bool]) -> None:
    if out and out[-1][1] == m[0] and out[-1][2:] == m[2:]:
        out[-1] = (out[-1][0], *m[1:])
    else:
        out.append(m)
