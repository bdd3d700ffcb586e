"""The console in Debian's chromium against a seeded tenant: each page loads without a console
error, the figures shown are the API's for the same filters, the controls work from the
keyboard and live in the URL, nothing overflows at 390 px, a 401 signs out, and a token's
scopes hide the pages it cannot use."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Server
from tests.console.conftest import CONSOLE, TURNS, Seeded, sign_in
from tests.statistics.conftest import Conv, Db

STATS = "/kalimera/statistics"


def number(text: str) -> int:
    return int(text.replace(",", "").strip())


def tiles(page: Page, *names: str) -> dict[str, str]:
    return {n: page.locator(f"[data-tile={n}] .tile-value").inner_text() for n in names}


def window(seeded: Seeded, **extra: Any) -> dict[str, Any]:
    return {"start": str(seeded.start), "end": str(seeded.end), "tz": "UTC", **extra}


def overview(seeded: Seeded, **extra: Any) -> str:
    query = "&".join(f"{k}={v}" for k, v in window(seeded, **extra).items())
    return f"#/overview?{query}"


def pages(seeded: Seeded) -> dict[str, tuple[str, str]]:
    """Each page: its fragment, and a selector that shows its data arrived."""
    return {
        "overview": (overview(seeded), "[data-period]"),
        "conversations": ("#/conversations", "[data-table=conversations] [data-id]"),
        "call": (f"#/conversations/{seeded.call_id}", "[data-seq]"),
        "agents": ("#/agents", "[data-table=agents] [data-id]"),
        "agent": (f"#/agents/{seeded.agent_with_secret}", "[data-section]"),
        "contacts": ("#/contacts", "[data-table=contacts]"),
        "contact": (f"#/contacts/{seeded.contact_id}", "form[aria-label='Edit contact']"),
        "webhooks": ("#/webhooks", "[data-table=webhooks]"),
    }


PAGES = [
    "overview",
    "conversations",
    "call",
    "agents",
    "agent",
    "contacts",
    "contact",
    "webhooks",
]


@pytest.mark.parametrize("name", PAGES)
def test_each_page_loads_without_a_console_error(
    page: Page, server: Server, seeded: Seeded, name: str
):
    fragment, ready = pages(seeded)[name]
    sign_in(page, server, seeded.tenant.token, fragment)
    page.locator(ready).first.wait_for()
    page.wait_for_load_state("networkidle")
    # the fixture fails the test on any console error once it ends


def test_the_realtime_tiles_are_the_apis(page: Page, server: Server, seeded: Seeded):
    sign_in(page, server, seeded.tenant.token, overview(seeded))
    expect(page.locator("[data-tile=active_total] .tile-value")).not_to_have_text("–")
    shown = tiles(page, "active_inbound", "active_outbound", "active_total")
    api = seeded.api(f"{STATS}/realtime", tz="UTC")
    assert {k: number(v) for k, v in shown.items()} == {
        k: api[k] for k in ("active_inbound", "active_outbound", "active_total")
    }
    assert api["active_total"] == 3  # the seeded calls, so the comparison is not of zeros


def test_the_realtime_tiles_refresh_every_10_seconds(page: Page, server: Server, seeded: Seeded):
    """A call that starts while the page is open shows at the next refresh, not before."""
    page.clock.install()
    sign_in(page, server, seeded.tenant.token, overview(seeded))
    total = page.locator("[data-tile=active_total] .tile-value")
    expect(total).to_have_text("3")
    now = datetime.now(UTC)
    started = Conv(seeded.tenant.id, seeded.agent_id, now, status="Active", last_activity_at=now)
    db = Db(server.settings.database_url.get_secret_value())  # type: ignore[union-attr]
    try:
        db.insert([started])
        page.clock.run_for(9_000)
        expect(total).to_have_text("3")
        page.clock.run_for(1_500)
        expect(total).to_have_text("4")
        assert seeded.api(f"{STATS}/realtime", tz="UTC")["active_total"] == 4
    finally:
        db.execute(
            "DELETE FROM kalimera_conversations WHERE tenant_id = %(t)s AND id = %(c)s",
            {"t": seeded.tenant.id, "c": started.id},
        )
        db.close()


def test_a_token_revoked_while_a_page_is_open_returns_to_the_sign_in(
    page: Page, server: Server, seeded: Seeded, errors: list[str]
):
    page.clock.install()
    sign_in(page, server, seeded.revocable_token, overview(seeded))
    expect(page.locator("[data-tile=active_total] .tile-value")).to_have_text("3")
    me = page.evaluate(
        "t => fetch('/kalimera/tokens/current', {headers: {Authorization: `Bearer ${t}`}})"
        ".then(r => r.json())",
        seeded.revocable_token,
    )
    revoked = httpx.delete(
        f"{server.url}/kalimera/tokens/{me['id']}",
        headers={"Authorization": f"Bearer {seeded.revocable_token}"},
    )
    assert revoked.status_code == 200, revoked.text
    page.clock.run_for(10_500)  # the tiles' next refresh meets the 401
    expect(page.locator("[data-message=signed-out]")).to_contain_text("401")
    assert page.evaluate("sessionStorage.getItem('kalimera.token')") is None
    errors[:] = [e for e in errors if "401" not in e]


@pytest.mark.parametrize("granularity", ["day", "week"])
def test_each_history_period_is_the_apis(
    page: Page, server: Server, seeded: Seeded, granularity: str
):
    sign_in(page, server, seeded.tenant.token, overview(seeded, granularity=granularity))
    api = seeded.api(f"{STATS}/history", **window(seeded, granularity=granularity))
    assert sum(p["total"] for p in api["series"]) > 0
    rows = page.locator("[data-table=history] [data-period]")
    expect(rows).to_have_count(len(api["series"]))
    for point in api["series"]:
        row = page.locator(f"[data-table=history] [data-period='{point['period_start']}']")
        for key in ("inbound", "outbound", "completed", "failed", "total"):
            assert number(row.locator(f"[data-key={key}]").inner_text()) == point[key], (
                point["period_start"],
                key,
            )


def test_the_breakdown_and_outcomes_are_the_apis(page: Page, server: Server, seeded: Seeded):
    sign_in(page, server, seeded.tenant.token, overview(seeded))
    page.locator("[data-heat=hour] [data-cell]").first.wait_for()
    breakdown = seeded.api(f"{STATS}/call-breakdown", **window(seeded))
    hours = page.locator("[data-heat=hour] [data-cell] .cell-n").all_inner_texts()
    assert [number(h) for h in hours] == breakdown["by_hour"]
    days = page.locator("[data-heat=weekday] [data-cell] .cell-n").all_inner_texts()
    assert [number(d) for d in days] == breakdown["by_weekday"]
    assert number(page.locator("[data-figure=breakdown_total]").inner_text()) == breakdown["total"]
    matrix = breakdown["by_weekday_hour"]
    assert sum(map(sum, matrix)) == breakdown["total"] > 0
    cells = page.locator("[data-heat=weekday-hour] td[data-cell]").all_inner_texts()
    assert cells == [str(n) if n else "" for row in matrix for n in row]
    outcomes = seeded.api(f"{STATS}/outcomes", **window(seeded))["totals"]
    shown = tiles(page, "ended", "success_rate", "latency_p50_ms", "latency_p90_ms")
    assert number(shown["ended"]) == outcomes["ended"]
    assert shown["success_rate"] == f"{outcomes['success_rate']} %"
    assert shown["latency_p50_ms"] == f"{outcomes['latency_p50_ms']} ms"
    assert shown["latency_p90_ms"] == f"{outcomes['latency_p90_ms']} ms"
    reasons = page.locator("[data-bars=ended_reason] [data-key]")
    shown_reasons = {
        r.get_attribute("data-key"): number(r.locator(".num").inner_text()) for r in reasons.all()
    }
    assert shown_reasons == {k: n for k, n in outcomes["by_ended_reason"].items() if n}


def test_a_calls_page_shows_its_turns_audio_and_analysis(
    page: Page, server: Server, seeded: Seeded
):
    sign_in(page, server, seeded.tenant.token, f"#/conversations/{seeded.call_id}")
    api = seeded.api(f"/kalimera/conversations/{seeded.call_id}")
    turns = page.locator("[data-seq]")
    expect(turns).to_have_count(len(api["turns"]))
    assert len(api["turns"]) == len(TURNS)
    for i, turn in enumerate(api["turns"]):
        shown = turns.nth(i)
        assert shown.locator(".transcript").inner_text() == turn["transcript"]
        src = shown.locator("audio").get_attribute("src") or ""
        assert urlsplit(src).path == urlsplit(turn["audio_url"]).path  # signed anew per read
    assert (
        page.locator("[data-field=verdict]")
        .inner_text()
        .startswith(api["analysis"]["success"]["result"])
    )
    assert page.locator("[data-field=summary]").inner_text() == api["analysis"]["summary"]
    shown = tiles(page, "ended_reason", "cost", "latency")
    assert shown["ended_reason"] == api["ended_reason"] == "customer-ended-call"
    assert shown["cost"] == f"{api['cost']['total']:.4f} {api['cost']['currency']}"
    latency = api["latency"]
    assert latency["max_ms"] == 910
    assert shown["latency"] == f"{latency['p50_ms']} / {latency['p90_ms']} / {latency['max_ms']} ms"


def test_the_audio_of_a_turn_plays_under_the_policy(page: Page, server: Server, seeded: Seeded):
    """The signed URL is another origin (the blob store): the CSP's media-src admits it."""
    sign_in(page, server, seeded.tenant.token, f"#/conversations/{seeded.call_id}")
    audio = page.locator("[data-seq] audio").first
    duration = audio.evaluate(
        "a => new Promise((ok, fail) => { a.onloadedmetadata = () => ok(a.duration);"
        " a.onerror = () => fail(new Error('audio failed')); a.load(); })"
    )
    assert duration > 0


def test_the_main_controls_work_from_the_keyboard(page: Page, server: Server, seeded: Seeded):
    sign_in(page, server, seeded.tenant.token, overview(seeded))
    page.locator("[data-period]").first.wait_for()
    page.locator("select[name=granularity]").focus()
    page.keyboard.press("ArrowDown")  # day -> week
    expect(page).to_have_url(re.compile(r"granularity=week"))
    api = seeded.api(f"{STATS}/history", **window(seeded, granularity="week"))
    expect(page.locator("[data-table=history] [data-period]")).to_have_count(len(api["series"]))
    first = api["series"][0]["period_start"]
    expect(page.locator(f"[data-period='{first}']")).to_be_visible()
    # the navigation: tab to a page's link and follow it with Enter
    link = page.get_by_role("link", name="Conversations")
    link.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#/conversations"))
    page.locator("[data-table=conversations] [data-id]").first.wait_for()
    search = page.get_by_label("Words")
    search.focus()
    page.keyboard.type("table")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"q=table"))
    expect(page.locator("[data-figure=conversations_total]")).to_have_text("1 conversation")


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "Failed"), ("profile_type", "outbound"), ("ended_reason", "agent-ended-call")],
)
def test_a_conversation_filter_shows_the_apis_answer(
    page: Page, server: Server, seeded: Seeded, field: str, value: str
):
    sign_in(page, server, seeded.tenant.token, "#/conversations")
    page.locator("[data-table=conversations] [data-id]").first.wait_for()
    form = page.get_by_role("form", name="Conversation filters")
    form.locator(f"select[name={field}]").select_option(value)
    form.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(f"{field}={value}"))
    api = seeded.api("/kalimera/conversations", **{field: value, "limit": 20})
    assert 0 < api["total"] < seeded.api("/kalimera/conversations")["total"]
    total = page.locator("[data-figure=conversations_total]")
    expect(total).to_have_text(f"{api['total']} conversations")  # several: 0 < total
    ids = page.locator("[data-table=conversations] [data-id]")
    expect(ids).to_have_count(len(api["items"]))
    assert [i.get_attribute("data-id") for i in ids.all()] == [c["id"] for c in api["items"]]


def test_the_controls_live_in_the_url(page: Page, server: Server, seeded: Seeded):
    url = overview(seeded, granularity="month", agent=seeded.agent_id)
    sign_in(page, server, seeded.tenant.token, url)
    expect(page.locator("select[name=granularity]")).to_have_value("month")
    expect(page.locator("select[name=agent]")).to_have_value(str(seeded.agent_id))
    expect(page.locator("input[name=start]")).to_have_value(str(seeded.start))
    expect(page.locator("select[name=tz]")).to_have_value("UTC")


def test_the_time_zone_defaults_to_the_browsers(browser, server: Server, seeded: Seeded):
    context = browser.new_context(timezone_id="Europe/Athens")
    try:
        tab = context.new_page()
        sign_in(tab, server, seeded.tenant.token)
        expect(tab.locator("select[name=tz]")).to_have_value("Europe/Athens")
    finally:
        context.close()


@pytest.mark.parametrize("name", PAGES)
def test_nothing_overflows_at_390_px(page: Page, server: Server, seeded: Seeded, name: str):
    page.set_viewport_size({"width": 390, "height": 844})
    fragment, ready = pages(seeded)[name]
    sign_in(page, server, seeded.tenant.token, fragment)
    page.locator(ready).first.wait_for()
    page.wait_for_load_state("networkidle")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{name} is {width} px wide"


def test_a_refused_token_returns_to_the_sign_in_with_a_message(
    page: Page, server: Server, seeded: Seeded, errors: list[str]
):
    sign_in(page, server, seeded.tenant.token, overview(seeded))
    page.evaluate("sessionStorage.setItem('kalimera.token', 'kal_not-a-token')")
    page.reload()
    expect(page.locator("[data-message=signed-out]")).to_contain_text("401")
    expect(page.get_by_label("API token")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('kalimera.token')") is None
    assert "kal_" not in page.url  # the token never enters the URL
    # the browser logs the refused request itself; nothing else may have failed
    errors[:] = [e for e in errors if "401" not in e]


def test_sign_out_forgets_the_token(page: Page, server: Server, seeded: Seeded):
    sign_in(page, server, seeded.tenant.token)
    assert page.evaluate("sessionStorage.getItem('kalimera.token')") == seeded.tenant.token
    assert page.evaluate("localStorage.length") == 0
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('kalimera.token')") is None


def test_a_wrong_token_is_refused_at_sign_in(page: Page, server: Server, errors: list[str]):
    page.goto(f"{server.url}{CONSOLE}")
    page.get_by_label("API token").fill("kal_wrong")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("refused")
    errors[:] = [e for e in errors if "401" not in e]


def test_a_tokens_scopes_hide_what_it_cannot_use(page: Page, server: Server, seeded: Seeded):
    sign_in(page, server, seeded.narrow_token)
    nav = page.get_by_role("navigation", name="Console pages", exact=True)
    expect(nav.get_by_role("link")).to_have_text(["Conversations"])
    expect(page.locator("h1")).to_have_text("Conversations")  # not an overview it cannot read
    page.locator("[data-table=conversations] [data-id]").first.wait_for()
    expect(page.locator("select[name=agent_id]")).to_have_count(0)  # no agents:read


def test_a_read_only_token_sees_no_way_to_change_anything(
    page: Page, server: Server, seeded: Seeded
):
    sign_in(page, server, seeded.reader_token, f"#/agents/{seeded.agent_with_secret}")
    page.locator("[data-section=ai_hub]").wait_for()
    expect(page.get_by_role("button", name="Edit")).to_have_count(0)
    expect(page.get_by_role("form", name="Re-run the analysis")).to_have_count(0)
    page.goto(f"{server.url}{CONSOLE}#/contacts")
    page.locator("[data-table=contacts] [data-id]").first.wait_for()
    expect(page.get_by_role("form", name="New contact")).to_have_count(0)
    expect(page.get_by_role("form", name="Import contacts")).to_have_count(0)
    page.goto(f"{server.url}{CONSOLE}#/contacts/{seeded.contact_id}")
    form = page.get_by_role("form", name="Edit contact")
    expect(form.get_by_label("last name")).to_be_disabled()
    expect(form.get_by_role("button", name="Save")).to_have_count(0)


def test_the_analysis_data_filter_is_the_apis(page: Page, server: Server, seeded: Seeded):
    sign_in(page, server, seeded.tenant.token, "#/conversations?data=intent%3Dbooking")
    api = seeded.api("/kalimera/conversations", **{"data.intent": "booking"})
    assert [c["id"] for c in api["items"]] == [str(seeded.call_id)]
    expect(page.locator("[data-figure=conversations_total]")).to_have_text("1 conversation")
    expect(page.locator("[data-table=conversations] [data-id]")).to_have_attribute(
        "data-id", str(seeded.call_id)
    )
    expect(page.get_by_label("Analysis data")).to_have_value("intent=booking")


@pytest.mark.parametrize(
    ("tz", "granularity"), [("Europe/Athens", "day"), ("America/New_York", "week")]
)
def test_a_history_periods_total_is_the_conversation_lists(
    page: Page, server: Server, seeded: Seeded, tz: str, granularity: str
):
    """A period's total on the overview links to the list of its calls: the same local days in
    the same zone, and the list counts what the chart counted."""
    sign_in(page, server, seeded.tenant.token, overview(seeded, tz=tz, granularity=granularity))
    api = seeded.api(f"{STATS}/history", **window(seeded, tz=tz, granularity=granularity))
    busy = [p for p in api["series"] if p["total"]]
    assert len(busy) >= 2
    for point in (busy[0], busy[-1]):  # the range clips the first week, not the last day
        row = page.locator(f"[data-table=history] [data-period='{point['period_start']}']")
        row.locator("[data-key=total] a").click()
        expect(page).to_have_url(re.compile(f"#/conversations\\?.*tz={quote(tz, safe='')}"))
        listed = page.locator("[data-figure=conversations_total]")
        expect(listed).to_have_text(re.compile(f"^{point['total']} conversations?$"))
        params = dict(parse_qsl(urlsplit(page.url).fragment.split("?", 1)[1]))
        assert params["tz"] == tz
        same = seeded.api("/kalimera/conversations", **params)
        assert same["total"] == point["total"]
        expect(page.locator("select[name=tz]")).to_have_value(tz)
        page.go_back()
        page.locator("[data-table=history] [data-period]").first.wait_for()


def test_the_conversation_list_defaults_to_the_browsers_zone(
    browser, server: Server, seeded: Seeded
):
    context = browser.new_context(timezone_id="Pacific/Auckland")
    try:
        tab = context.new_page()
        day = {"start": str(seeded.end), "end": str(seeded.end)}
        sign_in(
            tab,
            server,
            seeded.tenant.token,
            f"#/conversations?start={day['start']}&end={day['end']}",
        )
        expect(
            tab.get_by_role("form", name="Conversation filters").locator("select[name=tz]")
        ).to_have_value("Pacific/Auckland")
        api = seeded.api("/kalimera/conversations", **day, tz="Pacific/Auckland")
        utc = seeded.api("/kalimera/conversations", **day, tz="UTC")
        assert api["total"] != utc["total"]  # the zone decides which calls are listed
        expect(tab.locator("[data-figure=conversations_total]")).to_have_text(
            re.compile(f"^{api['total']} conversations?$")
        )
    finally:
        context.close()


def test_a_contacts_page_links_to_its_calls(page: Page, server: Server, seeded: Seeded):
    sign_in(page, server, seeded.tenant.token, f"#/contacts/{seeded.contact_id}")
    api = seeded.api(f"/kalimera/contact/{seeded.contact_id}/conversations", limit=5)
    assert api["total"] == 2
    shown = page.locator("[data-card=contact-calls] [data-id]")
    expect(shown).to_have_count(2)
    assert [s.get_attribute("data-id") for s in shown.all()] == [c["id"] for c in api["items"]]
    page.locator("[data-figure=contact_calls]").click()
    expect(page).to_have_url(re.compile(f"contact_id={seeded.contact_id}"))
    expect(page.locator("[data-figure=conversations_total]")).to_have_text("2 conversations")
    ids = page.locator("[data-table=conversations] [data-id]")
    expect(ids).to_have_count(2)
    assert [i.get_attribute("data-id") for i in ids.all()] == [c["id"] for c in api["items"]]
    expect(page.get_by_label("Contact id")).to_have_value(str(seeded.contact_id))
