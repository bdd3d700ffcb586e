"""The period plan's shape (how few rollup rows a local period costs) and the percentile over
histograms some of which are taken away. That the answers are exact is the invariant test's job
(tests/statistics/test_invariant.py); these pin what makes them cheap."""

from __future__ import annotations

import math
import struct
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings
from hypothesis import strategies as st

from kalimera.statistics.measures import COUNTED, Histogram, OutcomeSums, percentiles_disc
from kalimera.statistics.models import Granularity
from kalimera.statistics.windows import (
    BusyRows,
    Moved,
    PeriodPlan,
    Window,
    offsets,
    period_plan,
    plan,
)

START, END = date(2026, 1, 1), date(2026, 3, 31)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _plan(
    tz: str,
    granularity: Granularity,
    busy: list[date] | None = None,
    busy_rows: BusyRows = "hours",
) -> PeriodPlan:
    window = Window.of(tz, START, END)
    p = plan(window, dirty=[], now=NOW, busy=busy)
    return period_plan(window, granularity, p, busy_rows=busy_rows)


def test_a_half_hour_zone_reads_each_local_day_as_a_day_row_and_its_moved_quarters() -> None:
    p = _plan("Asia/Kolkata", Granularity.DAY)
    days = (END - START).days + 1
    # Every UTC day but the one before the window (5.5 hours of it in) counts whole.
    assert sum((last - first).days + 1 for first, last, _ in p.days) == days
    assert len(p.days) == days
    # 22 quarters a day move from one day to the next: 18:30 to midnight UTC.
    assert len(p.moved_quarters) == days
    assert all(m.hi - m.lo == 330 * 60 for m in p.moved_quarters)
    assert sum(m.kept for m in p.moved_quarters) == days - 1  # the last day's is past the window
    assert [hi - lo for lo, hi in p.quarters] == [timedelta(hours=5, minutes=30)]
    assert p.live == []


def test_whole_hour_zones_move_hour_rows_of_busy_days() -> None:
    busy = [START + timedelta(days=n) for n in range(10)]
    p = _plan("America/New_York", Granularity.DAY, busy)
    assert len(p.moved_hours) == 10
    assert all(m.hi - m.lo == 5 * 3600 for m in p.moved_hours)


def test_a_half_hour_zone_moves_the_whole_hours_of_busy_days_from_hour_rows() -> None:
    busy = [START + timedelta(days=n) for n in range(10)]
    p = _plan("Asia/Kolkata", Granularity.DAY, busy)
    # 18:30 to midnight UTC: two quarters, then five hours.
    assert [m.hi - m.lo for m in p.moved_hours] == [5 * 3600] * 10
    assert len(p.moved_quarters) == (END - START).days + 1
    assert p.hours == []  # a direct range may cross a local midnight: never from hour rows


DAYS = (END - START).days + 1
BUSY = [START - timedelta(days=1) + timedelta(days=n) for n in range(DAYS + 2)]


def _hours(moved: list[Moved]) -> list[float]:
    return [(m.hi - m.lo) / 3600 for m in moved]


def test_with_tail_rows_a_local_day_is_a_day_row_less_its_tail_plus_the_day_befores() -> None:
    p = _plan("Europe/Athens", Granularity.DAY, BUSY, "tails")
    # Every UTC day of the window counts whole in the local day its start lies in, less its
    # tail from 22:00 (21:00 in summer time) to midnight, which counts in the next.
    assert sum((last - first).days + 1 for first, last, _ in p.days) == DAYS
    assert all(m.hi % 86_400 == 0 for m in p.moved_hours)
    assert set(_hours(p.moved_hours)) == {2, 3}
    assert sum(m.kept for m in p.moved_hours) == DAYS - 1  # the last day's is past the window
    # The day before the window is its tail alone; no quarter is read.
    assert [hi - lo for lo, hi in p.hours] == [timedelta(hours=2)]
    assert p.moved_quarters == p.quarters == p.live == []


def test_with_tail_rows_a_zone_behind_utc_moves_the_long_tail() -> None:
    p = _plan("America/New_York", Granularity.DAY, BUSY, "tails")
    # A UTC day starts at 19:00 the local day before (20:00 in summer time): counted there, less
    # its tail from 05:00 (04:00); the day the window starts in is its tail alone.
    assert set(_hours(p.moved_hours)) == {19, 20}
    assert len(p.moved_hours) == DAYS
    assert [hi - lo for lo, hi in p.hours] == [timedelta(hours=19)]
    assert p.moved_quarters == p.quarters == p.live == []


def test_with_tail_rows_a_half_hour_zone_moves_a_tail_alone() -> None:
    p = _plan("Asia/Kolkata", Granularity.DAY, BUSY, "tails")
    assert set(_hours(p.moved_hours)) == {5.5}
    assert [hi - lo for lo, hi in p.hours] == [timedelta(hours=5, minutes=30)]
    assert p.moved_quarters == p.quarters == p.live == []


def test_with_tail_rows_a_quarter_hour_zone_moves_a_quarter_and_a_tail() -> None:
    p = _plan("Asia/Kathmandu", Granularity.DAY, BUSY, "tails")
    # 18:15 UTC: a quarter, then the tail from 18:30.
    assert set(_hours(p.moved_hours)) == {5.5}
    assert [m.hi - m.lo for m in p.moved_quarters] == [900] * DAYS
    assert [hi - lo for lo, hi in p.quarters] == [timedelta(minutes=15)]


def test_with_tail_rows_a_day_with_a_period_inside_it_reads_its_quarters() -> None:
    """Pacific/Apia skipped 30 December 2011: a UTC day that two local midnights cut."""
    window = Window.of("Pacific/Apia", date(2011, 12, 20), date(2012, 1, 10))
    busy = [date(2011, 12, 19) + timedelta(days=n) for n in range(23)]
    p = period_plan(
        window,
        Granularity.DAY,
        plan(window, dirty=[], now=NOW, busy=busy),
        busy_rows="tails",
    )
    assert all(m.hi % 86_400 == 0 for m in p.moved_hours)
    assert p.moved_quarters


def test_weeks_and_months_in_utc_are_day_rows_alone() -> None:
    for granularity in (Granularity.WEEK, Granularity.MONTH):
        p = _plan("UTC", granularity)
        assert p.moved_quarters == p.moved_hours == p.quarters == p.live == []


def test_today_rolled_up_to_a_quarter_is_read_from_quarter_rows_up_to_it_then_live() -> None:
    now = datetime(2026, 3, 31, 13, 7, tzinfo=UTC)
    today, cut = now.date(), datetime(2026, 3, 31, 12, 45, tzinfo=UTC)
    window = Window.of("UTC", START, END)
    p = plan(window, dirty=[today], now=now, rolled_to={today: cut})
    midnight = datetime(2026, 3, 31, tzinfo=UTC)
    assert p.rolled[-1] == (midnight, cut)
    assert p.live == [(cut, window.we)]
    pp = period_plan(window, Granularity.DAY, p)
    assert pp.quarters == [(midnight, cut)]
    assert pp.live == [(cut, window.we)]
    # Outside the aligned zones quarter rows cannot be placed in local hours: all of it live.
    odd = Window.of("Asia/Kolkata", START, END)
    assert odd.aligned  # +05:30 is a multiple of 15 minutes: quarter rows serve it
    kp = period_plan(
        odd, Granularity.DAY, plan(odd, dirty=[today], now=now, rolled_to={today: cut})
    )
    assert (midnight, cut) in kp.quarters
    assert kp.live == [(cut, odd.we)]


def test_a_dirty_day_without_an_intraday_run_is_read_live() -> None:
    day = date(2026, 2, 10)
    window = Window.of("UTC", START, END)
    p = period_plan(window, Granularity.DAY, plan(window, dirty=[day], now=NOW, rolled_to={}))
    midnight = datetime(2026, 2, 10, tzinfo=UTC)
    assert p.live == [(midnight, midnight + timedelta(days=1))]


def _histogram(latencies: list[int], sign: int = 1) -> Histogram:
    counts = sorted(Counter(latencies).items())
    cumulative = [sum(n for _, n in counts[: i + 1]) for i in range(len(counts))]
    pack = struct.Struct(">" + "i" * len(counts)).pack
    return Histogram.of(pack(*(v for v, _ in counts)), pack(*cumulative), sign)


latencies = st.lists(st.integers(0, 3000), min_size=1, max_size=40)


@settings(max_examples=500)
# The answer far below where the search starts (the largest part's own share of the rank).
@example(kept=[[0] * 7, [1, 2, 3, 4, 5, 6, 7, 8]], removed=[[5, 5]], fraction=0.4)
@given(
    kept=st.lists(latencies, min_size=1, max_size=8),
    removed=st.lists(latencies, max_size=5),
    fraction=st.sampled_from([0.5, 0.9, 0.01, 1.0]),
)
def test_a_percentile_with_parts_taken_away_is_that_of_the_turns_left(
    kept: list[list[int]], removed: list[list[int]], fraction: float
) -> None:
    # A part counted with some turns too many (a day row), and those taken away again.
    parts = [_histogram(p) for p in kept] + [_histogram(p + p[:1]) for p in removed]
    parts += [_histogram(p[:1], -1) for p in removed]
    left = sorted(v for p in kept + removed for v in p)
    expected = left[max(1, math.ceil(fraction * len(left))) - 1]
    median = left[max(1, math.ceil(0.5 * len(left))) - 1]
    assert percentiles_disc(parts, (fraction, 0.5)) == [expected, median]


def _cost_sums(rows: list[tuple[int, Decimal, int]]) -> dict[str, tuple[Decimal, int]]:
    """The costs of ``rows`` (calls with a cost, their total, sign) added up in that order."""
    sums = OutcomeSums()
    for n, total, sign in rows:
        sums.add_row("EUR", [0] * len(COUNTED), total, n, sign)
    return sums.costs


def test_a_currency_counted_to_zero_on_the_way_keeps_what_it_was_given() -> None:
    """A local day as the parts of a busy UTC day in the order the read returns them: the hours
    before it (+6, +8 calls), those after it taken away (-14, -23), then the day row (+229). The
    running count passes through zero before the day row comes: the 0.240687 added by then
    counts (it was dropped, and the day's cost read 14.063623)."""
    rows = [
        (6, Decimal("0.385954"), 1),
        (8, Decimal("0.557879"), 1),
        (14, Decimal("0.703146"), -1),
        (23, Decimal("1.039195"), -1),
        (229, Decimal("15.102818"), 1),
    ]
    assert _cost_sums(rows) == {"EUR": (Decimal("14.304310"), 206)}


costs = st.tuples(st.integers(1, 30), st.integers(0, 2_000_000).map(lambda n: Decimal(n) / 10**6))


@settings(max_examples=300)
@given(kept=st.lists(costs, max_size=6), removed=st.lists(costs, max_size=6), data=st.data())
def test_costs_of_parts_added_and_taken_away_in_any_order_are_those_left(
    kept: list[tuple[int, Decimal]], removed: list[tuple[int, Decimal]], data: st.DataObject
) -> None:
    """A period's cost is its rows' added up with their signs, whatever their order: a currency
    leaves the period only when none of its conversations is left at the end."""
    rows = [(n, t, 1) for n, t in kept + removed] + [(n, t, -1) for n, t in removed]
    expected = (sum((t for _, t in kept), Decimal(0)), sum(n for n, _ in kept))
    assert _cost_sums(data.draw(st.permutations(rows))) == ({"EUR": expected} if kept else {})


def _offsets_by_brute_force(window: Window) -> list[tuple[datetime, int]]:
    zone = ZoneInfo(window.tz)
    out: list[tuple[datetime, int]] = []
    at = window.ws
    while at < window.we:
        delta = at.astimezone(zone).utcoffset()
        seconds = int(delta.total_seconds()) if delta is not None else 0
        if not out or out[-1][1] != seconds:
            out.append((at, seconds))
        at += timedelta(minutes=15)
    return out


def test_the_stretches_of_one_offset_are_found_to_the_quarter_hour() -> None:
    for tz in (
        "UTC",
        "Asia/Kolkata",
        "Europe/Athens",
        "America/New_York",
        "Australia/Lord_Howe",
        "Pacific/Chatham",
        "America/Sao_Paulo",
    ):
        for start, end in (
            (date(2025, 1, 1), date(2026, 12, 31)),
            (date(2016, 10, 1), date(2017, 3, 1)),
        ):
            window = Window.of(tz, start, end)
            assert offsets(window) == _offsets_by_brute_force(window), tz
