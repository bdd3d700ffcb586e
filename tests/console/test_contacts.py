"""The contacts page: a new contact, the API's refusal shown beside the form, and a CSV import
whose bad rows are listed with their line and reason, as the API reports them."""

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.conftest import Server
from tests.console.conftest import Seeded, sign_in

CSV = (
    "first_name,last_name,contact_no,email\n"
    "Eleni,Georgiou,+302101234567,eleni@example.com\n"
    "Nikos,,+302107654321,nikos@example.com\n"
    "Maria,Ioannou,+302109998887,not-an-email\n"
    "Kostas,Dimitriou,,kostas@example.com\n"
)


def add_contact(page: Page, first: str, last: str, phone: str) -> None:
    form = page.get_by_role("form", name="New contact")
    form.get_by_label("First name").fill(first)
    form.get_by_label("Last name").fill(last)
    form.get_by_label("Phone").fill(phone)
    form.get_by_role("button", name="Add contact").click()


def test_a_new_contact_is_created_and_listed(page: Page, server: Server, seeded: Seeded):
    sign_in(page, server, seeded.tenant.token, "#/contacts")
    add_contact(page, "Sofia", "Alexiou", "+302101112223")
    expect(page.locator("[data-table=contacts]")).to_contain_text("Sofia Alexiou")
    found = seeded.api("/kalimera/contact", search="Alexiou")["contacts"]
    assert [(c["first_name"], c["contact_no"]) for c in found] == [("Sofia", "+302101112223")]


def test_a_refused_contact_shows_the_apis_reason(
    page: Page, server: Server, seeded: Seeded, errors: list[str]
):
    sign_in(page, server, seeded.tenant.token, "#/contacts")
    add_contact(page, "Bad", "Phone", "12")
    expect(page.locator("[data-state=create-error]")).to_contain_text("contact_no")
    errors[:] = [e for e in errors if "422" not in e and "400" not in e]


def test_a_csv_import_lists_each_bad_row(
    page: Page, server: Server, seeded: Seeded, tmp_path: Path
):
    path = tmp_path / "contacts.csv"
    path.write_text(CSV)
    sign_in(page, server, seeded.tenant.token, "#/contacts")
    form = page.get_by_role("form", name="Import contacts")
    form.locator("input[type=file]").set_input_files(path)
    with page.expect_response("**/kalimera/contact/import") as answered:
        form.get_by_role("button", name="Import").click()
    answer = answered.value.json()
    result = page.locator("[data-state=imported]")
    expect(result.locator("[data-figure=created]")).to_have_text("2")
    expect(result.locator("[data-figure=rejected]")).to_have_text("2")
    rows = result.locator("[data-table=import-errors] [data-row]")
    expect(rows).to_have_count(2)
    shown = [
        (int(r.get_attribute("data-row") or 0), r.locator("td").nth(1).inner_text())
        for r in rows.all()
    ]
    assert shown == [(e["row"], e["detail"]) for e in answer["errors"]]
    assert [line for line, _ in shown] == [3, 4]  # the header is line 1
    assert shown[0][1].startswith("last_name")
    assert shown[1][1].startswith("email")
    expect(page.locator("[data-table=contacts]")).to_contain_text("Eleni Georgiou")


def test_a_contact_is_edited_under_if_match_and_a_stale_edit_says_so(
    page: Page, server: Server, seeded: Seeded, errors: list[str]
):
    made = seeded.tenant.client.post(
        "/kalimera/contact", json={"first_name": "Anna", "last_name": "Pappa"}
    )
    assert made.status_code == 201, made.text
    contact = made.json()["id"]
    sign_in(page, server, seeded.tenant.token, f"#/contacts/{contact}")
    form = page.get_by_role("form", name="Edit contact")
    expect(form.get_by_label("last name")).to_have_value("Pappa")
    form.get_by_label("last name").fill("Papa")
    # the page reads the saved contact again (its new ETag): a change made before that read
    # would be read, not a conflict, so the other writer waits for it
    reread = page.expect_response(
        lambda r: r.request.method == "GET" and r.url.endswith(f"/kalimera/contact/{contact}")
    )
    with reread:
        form.get_by_role("button", name="Save").click()
    expect(page.locator("[data-state=saved]")).to_be_visible()
    assert seeded.api(f"/kalimera/contact/{contact}")["last_name"] == "Papa"
    meanwhile = seeded.tenant.client.put(
        f"/kalimera/contact/{contact}", json={"email": "anna@example.com"}
    )
    assert meanwhile.status_code == 200, meanwhile.text
    form.get_by_label("first name").fill("Annoula")
    form.get_by_role("button", name="Save").click()
    conflict = page.locator("[data-state=conflict]")
    expect(conflict).to_contain_text("changed since you opened it")
    assert seeded.api(f"/kalimera/contact/{contact}")["first_name"] == "Anna"
    conflict.get_by_role("button", name="Reload").click()
    expect(form.get_by_label("email")).to_have_value("anna@example.com")
    errors[:] = [e for e in errors if "412" not in e]
