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


def test_a_bulk_rerun_shows_the_runs_progress(page: Page, server: Server, seeded: Seeded):
    sign_in(page, server, seeded.tenant.token, f"#/agents/{seeded.agent_id}")
    form = page.get_by_role("form", name="Re-run the analysis")
    form.get_by_label("Ended from (UTC)").fill(str(seeded.start))
    with page.expect_response("**/analysis-runs") as answered:
        form.get_by_role("button", name="Re-run").click()
    made = answered.value.json()
    run = seeded.api(f"/kalimera/analysis-runs/{made['id']}")
    assert run["total"] == made["total"] > 0  # the seeded ended calls
    expect(page.locator("[data-figure=run_total]")).to_have_text(str(run["total"]))
    expect(page.locator("[data-figure=run_status]")).to_have_text(run["status"])
    handled = run["done"] + run["failed"] + run["skipped"] + run["cancelled"]
    expect(page.locator("[data-figure=run_handled]")).to_have_text(str(handled))
    expect(page.get_by_role("progressbar", name="Re-run progress")).to_be_visible()


def test_the_plan_versions_are_listed(page: Page, server: Server, seeded: Seeded):
    written = seeded.tenant.client.put(
        f"/kalimera/ai-agent/{seeded.agent_with_secret}/analysis-plan",
        json={"summary": {"enabled": True, "max_words": 60}},
    )
    assert written.status_code == 200, written.text
    sign_in(page, server, seeded.tenant.token, f"#/agents/{seeded.agent_with_secret}")
    versions = seeded.api(f"/kalimera/ai-agent/{seeded.agent_with_secret}/analysis-plan/versions")
    shown = page.locator("[data-list=plan-versions] summary")
    expect(shown).to_have_count(len(versions["items"]))
    expect(shown.first).to_contain_text(f"Version {versions['items'][0]['version']}")
