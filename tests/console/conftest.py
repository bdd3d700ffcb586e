"""The console's tests: the built console (``make console``, which ``make test`` runs first)
served by the session's app, Debian's chromium driven by Playwright, and a tenant seeded with
known calls (statistics rows written with SQL and rolled up, as tests/statistics does; one call
ingested turn by turn with audio in Azurite, as telephony delivers it).

Everything that runs asyncio (seeding, tokens) runs before Playwright's sync API starts in the
module, which keeps its own event loop on this thread.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    Route,
    expect,
    sync_playwright,
)
from psycopg.types.json import Jsonb

from kalimera import console
from kalimera.auth import DEFAULT_SCOPES, Scope
from tests.conftest import Server, Tenant, make_token
from tests.statistics.conftest import Conv, Db, rollup
from tests.support.analysis import meta
from tests.support.audio_fixtures import wav_bytes
from tests.support.calls import Call, ingest, put_blob

CONSOLE = "/kalimera/console/"
# Every read scope and no write one.
READER = tuple(s for s in DEFAULT_SCOPES if s.value.endswith(":read"))
# A loaded machine (the suite beside a benchmark) answers slower than Playwright's 5 s default.
expect.set_options(timeout=15_000)
# The seeded window: 10 days ending yesterday (UTC), so the rollup has closed every day of it.
DAYS = 10


@dataclass
class Seeded:
    tenant: Tenant
    agent_id: uuid.UUID
    call_id: uuid.UUID
    start: date
    end: date
    narrow_token: str = ""
    agent_with_secret: str = ""
    revocable_token: str = ""
    reader_token: str = ""
    contact_id: int = 0

    def api(self, path: str, **params: Any) -> Any:
        answer = self.tenant.client.get(path, params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()


# The seeded call's turns: (seq, direction, transcript, the agent's latency in ms).
TURNS = [
    (1, "input", "Good evening, a table for two at eight please.", None),
    (1, "output", "Of course, two at eight. Under which name?", 640),
    (2, "input", "Papadopoulos.", None),
    (2, "output", "Thank you, see you tonight.", 910),
]

# planted in an agent to prove the page never shows it
SECRET = "sk-console-test-0123456789"

ANALYSIS = {
    "status": "done",
    "plan_version": 1,
    "summary": "The caller booked a table for two at eight.",
    "success": {"result": "pass", "rationale": "A table was booked."},
    "data": {"party_size": 2, "intent": "booking"},
    "sentiment": {"label": "positive", "score": 0.7},
    "model": "gpt-4.1-mini",
    "input_tokens": 120,
    "output_tokens": 40,
    "cost": 0.0004,
    "analysed_at": "2026-11-30T10:00:00Z",
    "error": None,
    "reason": None,
}


def seed(server: Server) -> Seeded:
    """A tenant with history over ``DAYS`` days, three calls active now, and one ended call with
    two real turns, a cost, a reason and an analysis."""
    tenant = Tenant(server, (*DEFAULT_SCOPES, Scope.AGENTS_RUNTIME))
    call = Call(server.settings, tenant)
    for seq, direction, words, latency in TURNS:
        fields = {"transcript": words, **({"latency_ms": latency} if latency else {})}
        name = call.name(seq, direction, "wav")
        put_blob(server.settings, name, wav_bytes(0.5), meta(**fields))
        assert ingest(server.settings, name).outcome.value == "ingested"
    ended = tenant.client.patch(
        f"/kalimera/conversations/{call.conversation_id}",
        json={
            "status": "Completed",
            "title": "Table for two",
            "ended_reason": "customer-ended-call",
            "cost": {"currency": "EUR", "telephony": 0.012, "stt": 0.003, "llm": 0.004},
        },
    )
    assert ended.status_code == 200, ended.text
    today = datetime.now(UTC).date()
    end = today - timedelta(days=1)
    start = end - timedelta(days=DAYS - 1)
    rows = []
    for i in range(DAYS):
        day = datetime.combine(start + timedelta(days=i), datetime.min.time(), UTC)
        for n in range(i % 4 + 1):
            at = day + timedelta(hours=8 + 2 * n, minutes=7 * i)
            rows.append(
                Conv(
                    tenant.id,
                    call.agent_id,
                    at,
                    status="Failed" if n == 2 else "Completed",
                    profile_type="outbound" if n % 2 else "inbound",
                    language="el" if i % 3 == 0 else "en",
                    duration=Decimal(30 + 40 * n),
                    ended_at=at + timedelta(seconds=30 + 40 * n),
                    sentiment=("positive", "neutral", "negative")[n % 3],
                    ended_reason="agent-ended-call" if n else "customer-ended-call",
                    cost={"currency": "EUR", "telephony": 0.01 * (n + 1)},
                    latencies=[400 + 100 * n, 700],
                    analysis_status="done",
                    success_rubric="pass_fail",
                    success_result="fail" if n == 3 else "pass",
                )
            )
    now = datetime.now(UTC)
    for direction in ("inbound", "inbound", "outbound"):
        rows.append(
            Conv(
                tenant.id,
                call.agent_id,
                now - timedelta(minutes=3),
                status="Active",
                profile_type=direction,
                last_activity_at=now,
                ended_at=None,
            )
        )
    assert server.settings.database_url is not None
    db = Db(server.settings.database_url.get_secret_value())
    try:
        db.insert(rows)
        db.execute(
            "UPDATE kalimera_conversations SET analysis = %(a)s, analysis_status = 'done'"
            " WHERE tenant_id = %(t)s AND id = %(c)s",
            {"a": Jsonb(ANALYSIS), "t": tenant.id, "c": call.conversation_id},
        )
    finally:
        db.close()
    rollup(server.settings)
    narrow = make_token(server.settings, tenant.id, (Scope.CONVERSATIONS_READ,))
    agent = tenant.client.post(
        "/kalimera/ai-agent",
        json={
            "name": "Reception",
            "description": "Answers the restaurant's calls",
            "ai_hub": {
                "Endpoint": "https://example.openai.azure.com",
                "ApiKey": SECRET,
                "ModelName": "gpt-4.1-mini",
            },
        },
    )
    assert agent.status_code == 201, agent.text
    contact = tenant.client.post(
        "/kalimera/contact",
        json={"first_name": "Dimitra", "last_name": "Nikolaou", "contact_no": "+302105550000"},
    )
    assert contact.status_code == 201, contact.text
    for minutes in (90, 30):  # two ended calls from the contact's number: its calls
        started = tenant.client.post(
            "/kalimera/conversations",
            json={
                "agent_id": str(call.agent_id),
                "profile_type": "inbound",
                "from_number": "+302105550000",
                "started_at": (now - timedelta(minutes=minutes)).isoformat(),
            },
        )
        assert started.status_code == 201, started.text
        ended = tenant.client.patch(
            f"/kalimera/conversations/{started.json()['id']}", json={"status": "Completed"}
        )
        assert ended.status_code == 200, ended.text
    # a token that may revoke itself, to end a session while a page is open
    revocable = make_token(server.settings, tenant.id, (Scope.STATISTICS_READ, Scope.TOKENS_ADMIN))
    return Seeded(
        tenant,
        call.agent_id,
        call.conversation_id,
        start,
        end,
        narrow,
        agent.json()["id"],
        revocable,
        make_token(server.settings, tenant.id, READER),
        contact.json()["id"],
    )


@pytest.fixture(scope="module")
def seeded(server: Server) -> Iterator[Seeded]:
    if not (console.DIST / "index.html").is_file():
        pytest.fail("the console is not built: `make test` builds it (or `make console`)")
    data = seed(server)
    yield data
    data.tenant.client.close()


@pytest.fixture(scope="module")
def browser(seeded: Seeded) -> Iterator[Browser]:
    """Debian's chromium (``make chromium`` installs it), never a browser Playwright downloads."""
    with chromium() as launched:
        yield launched


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's chromium under Playwright (start it after any asyncio work of the module)."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed: `make test` installs it (or `make chromium`)")
    with sync_playwright() as playwright:
        yield launch(playwright, executable)


def launch(playwright: Playwright, executable: str) -> Browser:
    return playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])


@pytest.fixture
def errors() -> list[str]:
    """The console errors and uncaught page errors of the test's tab."""
    return []


@pytest.fixture
def page(browser: Browser, errors: list[str]) -> Iterator[Page]:
    """A fresh tab (its own sessionStorage) in UTC; every console error or uncaught page error
    fails the test that made it (a test that provokes one removes it from ``errors``)."""
    with tab(browser, errors) as opened:
        yield opened


@contextlib.contextmanager
def tab(browser: Browser, errors: list[str], **options: Any) -> Iterator[Page]:
    """A tab in a context of its own that records console errors in ``errors`` and fails any
    request that leaves the machine; the errors are asserted empty when it closes."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, timezone_id="UTC", **options
    )
    opened = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    def offline(route: Route) -> None:
        """The console works offline: a request for anything but this machine fails the test
        (the API, and the blob store that signs the turns' audio, are both on 127.0.0.1)."""
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            errors.append(f"a request left the machine: {route.request.url}")
            route.abort()

    context.route("**/*", offline)
    opened.on("console", on_console)
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.set_default_timeout(15_000)
    yield opened
    context.close()
    assert errors == [], f"console errors: {errors}"


def sign_in(page: Page, server: Server, token: str, fragment: str = "") -> None:
    """Open the console at ``fragment`` and sign in with ``token`` from the keyboard."""
    page.goto(f"{server.url}{CONSOLE}{fragment}")
    page.get_by_label("API token").fill(token)
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Sign out").wait_for()
