"""An agent's page: sections as JSON with secrets masked, a section saved under If-Match, and a
stale edit (someone saved first) shown as a conflict with a reload."""

import json

from playwright.sync_api import Page, expect

from tests.conftest import Server
from tests.console.conftest import SECRET, Seeded, sign_in

MASK = "********"


def open_agent(page: Page, server: Server, seeded: Seeded) -> None:
    sign_in(page, server, seeded.tenant.token, f"#/agents/{seeded.agent_with_secret}")
    page.locator("[data-section=ai_hub]").wait_for()


def edit(page: Page, section: str, change: dict) -> None:
    block = page.locator(f"[data-section={section}]")
    block.get_by_role("button", name="Edit").click()
    area = block.locator("textarea")
    document = json.loads(area.input_value())
    area.fill(json.dumps({**document, **change}))
    block.get_by_role("button", name="Save").click()


def test_sections_show_as_json_with_secrets_masked(page: Page, server: Server, seeded: Seeded):
    open_agent(page, server, seeded)
    expect(page.locator("[data-section]")).to_have_count(13)
    shown = json.loads(page.locator("[data-section=ai_hub] pre").inner_text())
    api = seeded.api(f"/kalimera/ai-agent/{seeded.agent_with_secret}")
    assert shown == api["ai_hub"]
    assert MASK in json.dumps(shown)
    assert SECRET not in page.content()


def test_a_section_saves_under_if_match_and_keeps_a_masked_secret(
    page: Page, server: Server, seeded: Seeded
):
    open_agent(page, server, seeded)
    edit(page, "web_talk", {"Enabled": True})
    expect(page.locator("[data-section=web_talk] pre")).to_contain_text('"Enabled": true')
    assert seeded.api(f"/kalimera/ai-agent/{seeded.agent_with_secret}")["web_talk"]["Enabled"]
    edit(page, "ai_hub", {"ModelName": "gpt-4.1"})  # the key goes back as the mask
    expect(page.locator("[data-section=ai_hub] pre")).to_contain_text('gpt-4.1"')
    runtime = seeded.api(f"/kalimera/ai-agent/{seeded.agent_with_secret}/runtime-config")
    assert SECRET in json.dumps(runtime)  # the stored secret was kept, not overwritten


def test_a_stale_edit_shows_the_conflict_and_reloads(
    page: Page, server: Server, seeded: Seeded, errors: list[str]
):
    open_agent(page, server, seeded)
    meanwhile = seeded.tenant.client.put(
        f"/kalimera/ai-agent/{seeded.agent_with_secret}/logging",
        json={"LogLevel": {"Default": "Warning"}},
    )
    assert meanwhile.status_code == 200, meanwhile.text
    edit(page, "serilog", {"MinimumLevel": "Debug"})
    conflict = page.locator("[data-state=conflict]")
    expect(conflict).to_contain_text("changed since you opened it")
    assert "Debug" not in json.dumps(
        seeded.api(f"/kalimera/ai-agent/{seeded.agent_with_secret}")["serilog"]
    )
    conflict.get_by_role("button", name="Reload").click()
    expect(conflict).to_have_count(0)
    expect(page.locator("[data-section=logging] pre")).to_contain_text("Warning")
    errors[:] = [e for e in errors if "412" not in e]  # the browser logs the refused PUT
