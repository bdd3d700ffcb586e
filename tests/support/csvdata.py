"""CSV files for the import tests and the import benchmark."""

import csv
import io
from dataclasses import dataclass

from kalimera.contacts.models import ContactCreate

HEADER = tuple(ContactCreate.model_fields)

# Each kind of bad row, as (field to spoil, spoiled value); one more kind repeats a phone number.
SPOILERS = (
    ("contact_no", "12"),
    ("email", "not-an-email"),
    ("last_name", ""),
    ("end_datetime", "2024-01-01T00:00:00Z"),
    ("voice", "Robot"),
    ("status", "Sideways"),
    ("first_name", "x" * 51),
    ("start_datetime", "yesterday"),
)


@dataclass(frozen=True)
class CsvFile:
    data: bytes
    bad_lines: list[int]
    good: int


def phone(i: int) -> str:
    """A valid Greek mobile number, distinct for each ``i``."""
    return f"+3069{i:08d}"


def contacts_csv(
    rows: int, *, bad_every: int = 0, delimiter: str = ",", bom: bool = False
) -> CsvFile:
    """``rows`` data rows; every ``bad_every``-th one is bad in one of several ways."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(HEADER)
    bad_lines = []
    for i in range(rows):
        row = {
            "first_name": f"First{i}",
            "last_name": f"Last{i}",
            "contact_no": phone(i),
            "email": f"person{i}@example.com",
            "start_datetime": "2024-08-24T17:30:00+03:00",
            "end_datetime": "2024-08-24T18:00:00+03:00",
            "language": "Greek" if i % 2 else "English",
            "voice": "Female" if i % 3 else "Male",
            "status": "Outbound" if i % 5 else "Inbound",
        }
        if bad_every and i % bad_every == bad_every - 1:
            kind = (i // bad_every) % (len(SPOILERS) + 1)
            if kind == len(SPOILERS):
                row["contact_no"] = phone(i - 1)  # the row above's number
            else:
                field, value = SPOILERS[kind]
                row[field] = value
            bad_lines.append(i + 2)  # the header is line 1
        writer.writerow(row[name] for name in HEADER)
    text = out.getvalue()
    data = ("\ufeff" + text if bom else text).encode()
    return CsvFile(data=data, bad_lines=bad_lines, good=rows - len(bad_lines))
