"""The console behind API Management (infra/app/apim.bicep): served at /v1/kalimera/console/, it
calls the API at /v1/kalimera/... on the same origin, and asks at sign-in for the subscription
key the gateway's `kalimera` API requires, which it sends on every call. The gateway is played
by a Playwright route in front of the session's app: it strips /v1 as API Management does, and
answers 401 to an API call without the key, as API Management does."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import Page, Route, expect

from tests.conftest import Server
from tests.console.conftest import Seeded

KEY = "0123456789abcdef0123456789abcdef"  # a subscription key's shape (32 hex characters)
HEADER = "ocp-apim-subscription-key"


def test_behind_the_gateway_the_console_sends_the_subscription_key_on_every_api_call(
    page: Page, server: Server, seeded: Seeded
):
    calls: list[tuple[str, str | None]] = []

    def gateway(route: Route) -> None:
        url = urlsplit(route.request.url)
        path = url.path.removeprefix("/v1")
        if not path.startswith("/kalimera/console"):  # the `kalimera` API: the key is required
            calls.append((path, route.request.headers.get(HEADER)))
            if route.request.headers.get(HEADER) != KEY:
                route.fulfill(status=401, json={"statusCode": 401, "message": "no key"})
                return
        backend = f"{server.url}{path}" + (f"?{url.query}" if url.query else "")
        route.fulfill(response=route.fetch(url=backend))

    page.route(f"{server.url}/v1/kalimera/**", gateway)
    page.goto(f"{server.url}/v1/kalimera/console/")
    page.get_by_label("API token").fill(seeded.reader_token)
    page.get_by_label("Subscription key (API Management)").fill(KEY)
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Sign out").wait_for()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert ("/kalimera/tokens/current", KEY) in calls
    assert any(path.startswith("/kalimera/statistics/") for path, _ in calls)
    assert {key for _, key in calls} == {KEY}


def test_served_by_the_app_itself_the_sign_in_asks_for_no_subscription_key(
    page: Page, server: Server
):
    page.goto(f"{server.url}/kalimera/console/")
    expect(page.get_by_label("API token")).to_be_visible()
    expect(page.get_by_label("Subscription key (API Management)")).to_have_count(0)
