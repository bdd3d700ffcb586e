"""The webhooks page in Debian's chromium against a development-mode API (a local http receiver
is allowed there) and a real receiver: an endpoint made on the page gets its test event, which
the worker (driven as the dev runner drives it) delivers; the log shows the API's figures; retry
and replay queue again; the secret is shown once and copied; scopes hide what a token cannot
use; the keyboard reaches everything; nothing overflows at 390 px."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from standardwebhooks import Webhook

from kalimera.auth import DEFAULT_SCOPES, Scope
from kalimera.settings import Settings
from tests.conftest import Server, Tenant, make_token
from tests.console.conftest import READER, chromium, sign_in
from tests.support.receiver import Receiver
from tests.webhooks.conftest import all_settled, deliveries, dev_server, dev_settings, drain

__all__ = ["dev_server", "dev_settings"]  # the webhook tests' fixtures, used here too

BASE = "/kalimera/webhooks"


@dataclass
class Hooks:
    tenant: Tenant
    reader_token: str
    no_webhooks_token: str


@pytest.fixture(scope="module")
def hooks(dev_server: Server) -> Iterator[Hooks]:
    tenant = Tenant(dev_server, tuple(DEFAULT_SCOPES))
    reader = make_token(dev_server.settings, tenant.id, READER)
    narrow = make_token(dev_server.settings, tenant.id, (Scope.CONVERSATIONS_READ,))
    yield Hooks(tenant, reader, narrow)
    tenant.client.close()


@pytest.fixture(scope="module")
def browser(hooks: Hooks) -> Iterator[Browser]:
    """Started after the module's asyncio work (the tenant and its tokens)."""
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def deliver(settings: Settings, until: Callable[[], bool]) -> None:
    """The worker's rounds, on a thread of their own: Playwright's loop owns this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(drain, settings, until).result()


def make_endpoint(page: Page, url: str, description: str) -> tuple[str, str]:
    """Add an endpoint from the keyboard; its id and the secret shown."""
    form = page.get_by_role("form", name="New endpoint")
    form.get_by_label("URL").focus()
    page.keyboard.type(url)
    page.keyboard.press("Tab")
    page.keyboard.type(description)
    page.keyboard.press("Enter")
    secret = form.locator("[data-field=secret]")
    expect(secret).to_contain_text("whsec_")
    row = page.locator(f"[data-table=webhooks] tr:has-text('{description}')")
    expect(row).to_have_count(1)
    return str(row.get_attribute("data-id")), secret.inner_text()


def send_a_test_event(page: Page, settings: Settings, tenant: Tenant, endpoint: str) -> Locator:
    """Send one from the endpoint's page, deliver it, refresh the log: its row, delivered."""
    page.get_by_role("button", name="Send a test event").click()
    expect(page.locator("[data-figure=queued]")).to_have_text("1 delivery")
    deliver(settings, all_settled(tenant, endpoint))
    page.get_by_role("button", name="Refresh").click()
    row = page.locator("[data-table=deliveries] [data-id]")
    expect(row).to_have_attribute("data-status", "delivered")
    return row


def test_an_endpoint_made_on_the_page_gets_its_test_event(
    page: Page, dev_server: Server, hooks: Hooks, receiver: Receiver
):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, dev_server, hooks.tenant.token, "#/webhooks")
    endpoint, secret = make_endpoint(page, receiver.url, "CRM sync")
    page.get_by_role("button", name="Copy the secret").click()
    expect(page.locator("[data-state=copied]")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    api = hooks.tenant.client.get(f"{BASE}/{endpoint}").json()
    assert api["url"] == receiver.url
    assert "secret" not in api
    page.reload()  # shown once: the page has no way to show it again
    page.locator("[data-table=webhooks] [data-id]").first.wait_for()
    expect(page.locator("[data-field=secret]")).to_have_count(0)

    page.get_by_role("link", name=receiver.url).first.click()
    expect(page).to_have_url(re.compile(f"#/webhooks/{endpoint}"))
    row = send_a_test_event(page, dev_server.settings, hooks.tenant, endpoint)
    [d] = deliveries(hooks.tenant, endpoint)
    attempt = d["attempts"][-1]
    assert row.get_attribute("data-id") == d["id"]
    assert row.locator("[data-key=attempts]").inner_text() == str(len(d["attempts"]))
    assert row.locator("[data-key=http]").inner_text() == str(attempt["status"]) == "200"
    assert row.locator("[data-key=latency]").inner_text() == f"{attempt['latency_ms']} ms"
    assert d["event_type"] == "webhook.test"
    # what arrived is signed with the secret the page showed
    [got] = receiver.received[-1:]
    Webhook(secret).verify(got.body, got.headers)


def test_retry_replay_and_the_status_filter(
    page: Page, dev_server: Server, hooks: Hooks, receiver: Receiver
):
    sign_in(page, dev_server, hooks.tenant.token, "#/webhooks")
    endpoint, _ = make_endpoint(page, receiver.url, "Retries")
    page.goto(f"{dev_server.url}/kalimera/console/#/webhooks/{endpoint}")
    row = send_a_test_event(page, dev_server.settings, hooks.tenant, endpoint)
    before = len(receiver.received)
    row.get_by_role("button", name=re.compile("^Retry the delivery")).click()
    expect(row.locator("[data-key=status]")).to_have_text("pending")

    def retried() -> bool:
        [d] = deliveries(hooks.tenant, endpoint)
        return d["status"] == "delivered" and len(d["attempts"]) == 2

    deliver(dev_server.settings, retried)
    assert len(receiver.received) == before + 1
    page.get_by_role("button", name="Refresh").click()
    expect(row.locator("[data-key=attempts]")).to_have_text("2")
    # a replay since a moment restarts the endpoint's delivery of each event since then
    page.get_by_label("Replay every event since").fill("2000-01-01T00:00")
    page.get_by_role("button", name="Replay", exact=True).click()
    expect(page.locator("[data-figure=queued]")).to_have_text("1 delivery")
    page.get_by_role("button", name="Refresh").click()
    expect(row.locator("[data-key=status]")).to_have_text("pending")
    # the status filter, from the keyboard, kept in the URL
    page.locator("select[name=status]").focus()
    page.keyboard.press("ArrowDown")  # Any -> pending
    expect(page).to_have_url(re.compile("status=pending"))
    pending = hooks.tenant.client.get(f"{BASE}/{endpoint}/deliveries?status=pending").json()
    assert pending["total"] == 1
    expect(page.locator("[data-figure=deliveries_total]")).to_have_text("1 delivery")
    page.keyboard.press("ArrowDown")  # pending -> delivered: none while it is pending
    expect(page).to_have_url(re.compile("status=delivered"))
    expect(page.locator("[data-figure=deliveries_total]")).to_have_text("0 deliveries")
    deliver(dev_server.settings, all_settled(hooks.tenant, endpoint))
    page.get_by_role("button", name="Refresh").click()
    expect(row.locator("[data-key=attempts]")).to_have_text("3")
    assert len(receiver.received) == before + 2
    # disable, then enable
    page.get_by_role("button", name="Disable").click()
    expect(page.locator("[data-field=state]")).to_have_text("disabled")
    assert hooks.tenant.client.get(f"{BASE}/{endpoint}").json()["enabled"] is False
    page.get_by_role("button", name="Enable").click()
    expect(page.locator("[data-field=state]")).to_have_text("enabled")
    # a rotated secret is shown once
    page.get_by_role("button", name="Rotate the secret").click()
    expect(page.locator("[data-field=secret]")).to_contain_text("whsec_")
    api = hooks.tenant.client.get(f"{BASE}/{endpoint}").json()
    assert api["previous_secret_expires_at"] is not None


def test_a_bad_url_shows_the_apis_reason(
    page: Page, dev_server: Server, hooks: Hooks, errors: list[str]
):
    sign_in(page, dev_server, hooks.tenant.token, "#/webhooks")
    form = page.get_by_role("form", name="New endpoint")
    form.get_by_label("URL").fill("ftp://example.com/hook")
    form.get_by_role("button", name="Add endpoint").click()
    expect(form.locator("[data-state=create-error]")).to_be_visible()
    answer = hooks.tenant.client.post(BASE, json={"url": "ftp://example.com/hook"})
    assert answer.status_code == 422
    [why] = answer.json()["errors"]
    expect(form.locator("[data-state=create-error]")).to_have_text(f"url: {why['msg']}")
    # the browser logs the refused request itself; nothing else may have failed
    errors[:] = [e for e in errors if "422" not in e]


def test_scopes_hide_the_page_and_its_controls(page: Page, dev_server: Server, hooks: Hooks):
    hooks.tenant.client.post(BASE, json={"url": "http://127.0.0.1:9/hook"})
    sign_in(page, dev_server, hooks.reader_token, "#/webhooks")
    page.locator("[data-table=webhooks] [data-id]").first.wait_for()
    expect(page.get_by_role("form", name="New endpoint")).to_have_count(0)
    page.locator("[data-table=webhooks] a").first.click()
    page.locator("[data-table=deliveries]").wait_for()
    expect(page.get_by_role("button", name="Send a test event")).to_have_count(0)
    expect(page.get_by_role("form", name="Replay events")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Retry"))).to_have_count(0)
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, dev_server, hooks.no_webhooks_token, "#/webhooks")
    nav = page.get_by_role("navigation", name="Console pages", exact=True)
    expect(nav.get_by_role("link", name="Webhooks")).to_have_count(0)
    expect(page.locator("h1")).to_have_text("Conversations")


@pytest.mark.parametrize("where", ["list", "endpoint"])
def test_nothing_overflows_at_390_px(page: Page, dev_server: Server, hooks: Hooks, where: str):
    made = hooks.tenant.client.post(
        BASE, json={"url": "http://127.0.0.1:9/a/rather/long/path/for/a/narrow/screen/hook"}
    )
    assert made.status_code == 201, made.text
    fragment = "#/webhooks" if where == "list" else f"#/webhooks/{made.json()['id']}"
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, dev_server, hooks.tenant.token, fragment)
    page.locator("[data-table]").first.wait_for()
    page.wait_for_load_state("networkidle")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{where} is {width} px wide"


def test_screenshot_of_the_webhooks_page(
    page: Page, dev_server: Server, hooks: Hooks, receiver: Receiver, tmp_path: Path
):
    """``make screenshots`` writes it to docs/screenshots/ beside the other pages'."""
    folder = Path(os.environ.get("KALIMERA_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    made = hooks.tenant.client.post(
        BASE,
        json={"url": receiver.url, "description": "CRM sync", "events": ["webhook.test"]},
    )
    assert made.status_code == 201, made.text
    endpoint = made.json()["id"]
    for _ in range(3):
        sent = hooks.tenant.client.post(f"{BASE}/{endpoint}/test")
        assert sent.status_code == 202, sent.text
    deliver(dev_server.settings, all_settled(hooks.tenant, endpoint))
    sign_in(page, dev_server, hooks.tenant.token, "#/webhooks")
    page.locator("[data-table=webhooks] [data-id]").first.wait_for()
    page.screenshot(path=folder / "webhooks.png", full_page=True)
    page.goto(f"{dev_server.url}/kalimera/console/#/webhooks/{endpoint}")
    expect(page.locator("[data-table=deliveries] [data-status=delivered]")).to_have_count(3)
    page.screenshot(path=folder / "webhook.png", full_page=True)
    assert (folder / "webhook.png").stat().st_size > 10_000
