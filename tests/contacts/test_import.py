"""CSV import: good rows stored in batches, each bad row reported by its line, no duplicates."""

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import Tenant
from tests.contacts.conftest import URL, create
from tests.support.csvdata import contacts_csv, phone
from tests.support.problems import assert_problem

IMPORT = f"{URL}/import"
CSV = {"Content-Type": "text/csv"}


def upload(client: httpx.Client, data: bytes, content_type: str = "text/csv") -> httpx.Response:
    return client.post(IMPORT, content=data, headers={"Content-Type": content_type})


def imported(client: httpx.Client, data: bytes) -> dict[str, object]:
    response = upload(client, data)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_ten_thousand_rows_with_500_bad_report_exactly_the_bad_rows(tenant: Tenant) -> None:
    file = contacts_csv(10_000, bad_every=20)
    assert len(file.bad_lines) == 500
    started = time.perf_counter()
    response = upload(tenant.client, file.data)
    elapsed = time.perf_counter() - started
    print(f"\nimport of 10,000 rows (500 bad): {elapsed:.2f} s")  # a figure, not an assertion
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["created"] == 9_500
    assert [e["row"] for e in result["errors"]] == file.bad_lines
    assert all(e["detail"] for e in result["errors"])
    assert tenant.client.get(URL, params={"per_page": 1}).json()["total"] == 9_500

    again = imported(tenant.client, file.data)
    assert again["created"] == 0
    assert [e["row"] for e in again["errors"]] == list(range(2, 10_002))  # type: ignore[union-attr]
    assert tenant.client.get(URL, params={"per_page": 1}).json()["total"] == 9_500


def test_each_kind_of_bad_row_is_reported_with_its_reason(tenant: Tenant) -> None:
    file = contacts_csv(9 * 4, bad_every=4)
    details = {e["row"]: e["detail"] for e in imported(tenant.client, file.data)["errors"]}  # type: ignore[attr-defined]
    assert sorted(details) == file.bad_lines
    reasons = list(details.values())
    for expected in (
        "contact_no: not a valid phone number",
        "email: not a valid email address",
        "last_name: First name and last name are required",
        "end_datetime: must not be before start_datetime",
        "voice: Input should be 'Male' or 'Female'",
        "status: Input should be 'Inbound' or 'Outbound'",
        "first_name: String should have at most 50 characters",
        "start_datetime: Input should be a valid datetime",
        f"contact_no: {phone(34)} is already on row 36",
    ):
        assert any(reason.startswith(expected) for reason in reasons), (expected, reasons)


def test_a_bom_and_semicolons_are_understood(tenant: Tenant) -> None:
    file = contacts_csv(20, bad_every=10, delimiter=";", bom=True)
    result = imported(tenant.client, file.data)
    assert result["created"] == file.good
    assert [e["row"] for e in result["errors"]] == file.bad_lines  # type: ignore[attr-defined]
    names = {
        c["first_name"] for c in tenant.client.get(URL, params={"per_page": 100}).json()["contacts"]
    }
    assert "First0" in names  # the BOM is not part of the first column's name


def test_a_quoted_field_across_lines_keeps_the_row_numbers_right(tenant: Tenant) -> None:
    data = (
        b"first_name,last_name,contact_no,language\r\n"
        b'"Anna","Multi\r\nLine\r\nName",+302101000001,Greek\r\n'
        b"Bad,Phone,12,English\r\n"
        b"\r\n"
        b'"Quoted ""nick""",Smith,+302101000002,"English"\r\n'
        b"Also,Bad,not-a-phone,English\r\n"
    )
    result = imported(tenant.client, data)
    assert result["created"] == 2
    assert [e["row"] for e in result["errors"]] == [5, 8]  # type: ignore[attr-defined]
    contacts = tenant.client.get(URL).json()["contacts"]
    assert {c["last_name"] for c in contacts} == {"Multi\r\nLine\r\nName", "Smith"}
    assert {c["first_name"] for c in contacts} == {"Anna", 'Quoted "nick"'}


@pytest.mark.parametrize("newline", [b"\n", b"\r"])
def test_lf_and_cr_line_endings_work_too(tenant: Tenant, newline: bytes) -> None:
    data = newline.join([b"first_name,last_name", b"A,B", b"Bad", b'"C' + newline + b'D",E'])
    result = imported(tenant.client, data + newline + b"F,G" + newline)
    assert result["created"] == 3
    assert [e["row"] for e in result["errors"]] == [3]  # type: ignore[attr-defined]


def test_rows_without_a_phone_number_are_duplicates_by_names_and_email(tenant: Tenant) -> None:
    create(tenant.client, first_name="Maria", last_name="Papadopoulou")
    data = (
        b"first_name,last_name,email\n"
        b"maria,PAPADOPOULOU,\n"  # the stored contact
        b"Maria,Papadopoulou,maria@example.com\n"  # another email: a new contact
        b"Nikos,Georgiou,\n"
        b"NIKOS,georgiou,\n"  # the row above
    )
    result = imported(tenant.client, data)
    assert result["created"] == 2
    assert [e["row"] for e in result["errors"]] == [2, 5]  # type: ignore[attr-defined]
    assert imported(tenant.client, data)["created"] == 0


def test_a_phone_number_already_stored_is_reported_not_inserted(tenant: Tenant) -> None:
    stored = create(tenant.client, contact_no="+302101234567")
    data = b"first_name,last_name,contact_no\nOther,Person,210 123 4567\nNew,Person,2109999999\n"
    result = imported(tenant.client, data)
    assert result["created"] == 1
    assert result["errors"] == [{"row": 2, "detail": "contact_no: +302101234567 is already stored"}]
    assert tenant.client.get(f"{URL}/{stored['id']}").json() == stored


def test_a_multipart_upload_with_a_file_part_works(tenant: Tenant) -> None:
    file = contacts_csv(5)
    response = tenant.client.post(IMPORT, files={"file": ("contacts.csv", file.data, "text/csv")})
    assert response.status_code == 200, response.text
    assert response.json() == {"created": 5, "errors": []}
    assert_problem(tenant.client.post(IMPORT, data={"note": "no file"}), 415)
    no_file = tenant.client.post(IMPORT, files={"note": (None, b"no file")})
    assert assert_problem(no_file, 400)["detail"] == "No file part"


def test_whole_file_faults_are_refused_and_store_nothing(tenant: Tenant) -> None:
    too_many = contacts_csv(10_001)
    problem = assert_problem(upload(tenant.client, too_many.data), 413)
    assert "10,000 rows" in str(problem["detail"])
    assert_problem(upload(tenant.client, b"x" * (10 * 1024 * 1024 + 1)), 413)
    assert_problem(
        upload(tenant.client, "first_name,last_name\nJosé,Ruiz\n".encode("latin-1")), 415
    )
    assert_problem(upload(tenant.client, b"first_name,last_name\nA,B\n", "image/png"), 415)
    assert_problem(
        upload(tenant.client, b"first_name,last_name\nA,B\n", "text/csv; charset=latin-1"), 415
    )
    for refused in (
        b"",
        b"\xef\xbb\xbf\r\n",
        b"first_name,surname\nA,B\n",
        b"first_name\nA\n",
        b"first_name,last_name,last_name\nA,B,C\n",
        b"first_name,last_name" + b"," * 100_000 + b"\nA,B\n",
        b"first_name,last_name\n" + b"x" * 200_000 + b",B\n",  # over csv's field size limit
    ):
        assert_problem(upload(tenant.client, refused), 422)
    assert tenant.client.get(URL).json()["total"] == 0


def test_a_header_only_file_creates_nothing(tenant: Tenant) -> None:
    assert imported(tenant.client, b"first_name,last_name\n") == {"created": 0, "errors": []}


def test_odd_rows_are_row_errors_not_server_errors(tenant: Tenant) -> None:
    data = b'first_name,last_name\nA\x00,B\n"unterminated,B\n'
    result = imported(tenant.client, data)
    assert result["created"] == 0
    assert [e["row"] for e in result["errors"]] == [2, 3]  # type: ignore[attr-defined]


def test_exported_columns_are_ignored_and_headers_are_forgiving(tenant: Tenant) -> None:
    data = b"id,First Name,last-name,Created_At,voice\n99,Anna,Smith,2020-01-01,female\n1,B\n"
    result = imported(tenant.client, data)
    assert result["created"] == 1
    assert result["errors"] == [{"row": 3, "detail": "2 fields; the header has 5"}]
    (contact,) = tenant.client.get(URL).json()["contacts"]
    assert (contact["first_name"], contact["voice"]) == ("Anna", "Female")
    assert contact["id"] != 99


def test_two_imports_of_the_same_file_at_once_store_each_contact_once(tenant: Tenant) -> None:
    # Half the rows have no phone number: only the per-tenant import lock keeps those single.
    rows = [f"Name{i},Person{i},{'' if i % 2 else f'+3069{i:08d}'}" for i in range(2_500)]
    data = ("first_name,last_name,contact_no\n" + "\n".join(rows) + "\n").encode()
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: imported(tenant.client, data), range(2)))
    assert sum(r["created"] for r in results) == 2_500  # type: ignore[misc]
    assert sum(len(r["errors"]) for r in results) == 2_500  # type: ignore[arg-type,misc]
    assert tenant.client.get(URL, params={"per_page": 1}).json()["total"] == 2_500
