"""CSV import of contacts: the parse, the checks and the batched inserts.

The file comes as bytes (at most ``MAX_BYTES``; ``csv_upload`` takes them out of an HTTP
request), is parsed and checked in a worker thread (so the event loop keeps serving), and its
good rows stored ``BATCH_ROWS`` at a time: one statement and one transaction per batch, so a
10,000-row file costs ten round trips. Nothing is written when the file as a whole is refused
(not UTF-8, more than ``MAX_ROWS`` rows, unknown columns).

Duplicates are reported, never stored twice: a row whose phone number is already stored in the
tenant, or appears on an earlier row of the file, is refused; a row *without* a phone number is
a duplicate when a contact without one has the same first name, last name and email (all
case-insensitive; no email matches no email). So importing the same file twice creates nothing
the second time.
"""

import asyncio
import csv
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from kalimera import events
from kalimera.contacts import repository
from kalimera.contacts.models import NAMES_REQUIRED, ContactCreate, ImportResult, RowError
from kalimera.db import transaction
from kalimera.errors import Invalid, TooLarge, Unsupported
from kalimera.phones import e164
from kalimera.services import Services
from kalimera.sizecap import SizeCap

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 10_000
TOO_LARGE = f"The file is larger than {MAX_BYTES // 2**20} MiB"
BATCH_ROWS = 1_000
DELIMITERS = (",", ";", "\t")
# Columns a listing export carries that the import leaves to the server.
READ_ONLY_COLUMNS = frozenset({"id", "created_at", "updated_at"})
COLUMNS = frozenset(ContactCreate.model_fields)
KNOWN_COLUMNS = COLUMNS | READ_ONLY_COLUMNS
# A header wider than this is refused by its width alone (it cannot be all known, distinct
# names), without normalising a million names to report which are wrong.
MAX_COLUMNS = 1_000


def file_cap() -> SizeCap:
    """The cap on one CSV file's bytes (the edge counts an upload's file part with it too)."""
    return SizeCap(limit=MAX_BYTES, detail=TOO_LARGE)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A row that passed every check of its own: its line and its stored fields."""

    line: int
    fields: dict[str, Any]

    @property
    def key(self) -> tuple[str | None, ...]:
        """What makes two rows the same contact (see the module docstring)."""
        if self.fields["contact_no"] is not None:
            return (self.fields["contact_no"],)
        return (
            None,
            self.fields["first_name"].lower(),
            self.fields["last_name"].lower(),
            (self.fields["email"] or "").lower(),
        )

    @property
    def stored_key(self) -> tuple[str | None, ...]:
        """The row as the insert returns it; unique within a batch, as ``key`` is."""
        fields = self.fields
        if fields["contact_no"] is not None:
            return (fields["contact_no"],)
        return (None, fields["first_name"], fields["last_name"], fields["email"])


def _records(data: bytes) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The normalised header and each non-blank record with the line where it starts."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unsupported(f"The file is not UTF-8 (byte {exc.start})") from None
    # Lines end in LF or CRLF; a file with CR alone (old Mac exports) ends them in CR.
    newline = "\r" if "\n" not in text and "\r" in text else "\n"
    first_line = text.split(newline, 1)[0]
    delimiter = max(DELIMITERS, key=first_line.count)
    reader = csv.reader(_lines(text, newline), delimiter=delimiter)
    header = _header(reader)

    def records() -> Iterator[tuple[int, list[str]]]:
        line = reader.line_num + 1
        try:
            for cells in reader:
                if any(cell.strip() for cell in cells):
                    yield line, cells
                line = reader.line_num + 1
        except csv.Error as exc:
            raise Invalid(f"Line {line}: the CSV cannot be read ({exc})") from None

    return header, records()


def _lines(text: str, newline: str) -> Iterator[str]:
    """The lines of ``text``, each with its ending, as the csv module wants them; one at a time
    rather than a copy of the whole text."""
    start = 0
    while start < len(text):
        end = text.find(newline, start)
        end = len(text) if end == -1 else end + 1
        yield text[start:end]
        start = end


def _header(reader: Any) -> list[str]:
    try:
        raw = next(reader, None)
    except csv.Error as exc:
        raise Invalid(f"Line 1: the CSV cannot be read ({exc})") from None
    if not raw or not any(cell.strip() for cell in raw):
        raise Invalid("The file is empty: the first line must name the columns")
    known = ", ".join(ContactCreate.model_fields)
    if len(raw) > MAX_COLUMNS:
        raise Invalid(f"The header has {len(raw):,} columns; the columns are {known}")
    header = [cell.strip().lower().replace(" ", "_").replace("-", "_") for cell in raw]
    unknown = list(dict.fromkeys(name for name in header if name not in KNOWN_COLUMNS))
    if unknown:
        raise Invalid(f"Unknown column(s): {_some(unknown)}; the columns are {known}")
    repeated = sorted(name for name, seen in Counter(header).items() if seen > 1)
    if repeated:
        raise Invalid(f"Repeated column(s): {_some(repeated)}")
    missing = [name for name in ("first_name", "last_name") if name not in header]
    if missing:
        raise Invalid(f"Missing column(s): {', '.join(missing)}; {NAMES_REQUIRED}")
    return header


def _some(names: list[str], most: int = 10) -> str:
    """A few names for a message (a hostile header can hold millions)."""
    shown = ", ".join(repr(name) for name in names[:most])
    return shown + (f" and {len(names) - most:,} more" if len(names) > most else "")


def _row_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in err["loc"]) or "row"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = NAMES_REQUIRED
        parts.append(f"{field}: {msg}")
    return "; ".join(parts)


def check(data: bytes, region: str) -> tuple[list[Candidate], list[RowError]]:
    """Parse and check the whole file: the rows to store, in order, and the rows refused.

    A whole-file fault raises a domain error (``kalimera.errors``) before anything is stored.
    """
    header, records = _records(data)
    width = len(header)
    candidates: list[Candidate] = []
    errors: list[RowError] = []
    first_seen: dict[tuple[str | None, ...], int] = {}
    for count, (line, cells) in enumerate(records, start=1):
        if count > MAX_ROWS:
            raise TooLarge(f"The file has more than {MAX_ROWS:,} rows")
        if len(cells) != width:
            errors.append(RowError(row=line, detail=f"{len(cells)} fields; the header has {width}"))
            continue
        values = {
            name: cell.strip()
            for name, cell in zip(header, cells, strict=True)
            if name not in READ_ONLY_COLUMNS and cell.strip()
        }
        try:
            fields = ContactCreate.model_validate(values).model_dump()
            if fields["contact_no"] is not None:
                fields["contact_no"] = e164(fields["contact_no"], region)
        except ValidationError as exc:
            errors.append(RowError(row=line, detail=_row_error(exc)))
            continue
        except ValueError as exc:
            errors.append(RowError(row=line, detail=f"contact_no: {exc}"))
            continue
        candidate = Candidate(line, fields)
        earlier = first_seen.setdefault(candidate.key, line)
        if earlier != line:
            errors.append(RowError(row=line, detail=_duplicate(candidate, f"on row {earlier}")))
            continue
        candidates.append(candidate)
    return candidates, errors


def _duplicate(candidate: Candidate, where: str) -> str:
    if candidate.fields["contact_no"] is not None:
        return f"contact_no: {candidate.fields['contact_no']} is already {where}"
    return f"a contact with these names and email and no phone number is already {where}"


async def import_csv(*, services: Services, tenant_id: uuid.UUID, data: bytes) -> ImportResult:
    """Store the file's good rows, batch by batch, and report every row refused."""
    file_cap().take(data)
    candidates, errors = await asyncio.to_thread(
        check, data, services.settings.default_phone_region
    )
    pool = await services.db()
    created = 0
    starts = range(0, len(candidates), BATCH_ROWS)
    for start in starts or [0]:
        batch = candidates[start : start + BATCH_ROWS]
        async with transaction(pool) as conn:
            if batch:
                await repository.lock_imports(conn=conn, tenant_id=tenant_id)
                inserted = await repository.insert_many(
                    conn=conn, tenant_id=tenant_id, rows=[c.fields for c in batch]
                )
                numbered = [row for row in inserted if row["contact_no"] is not None]
                if numbered:  # the batch's calls, in one statement (migration 0025)
                    await repository.link_calls(
                        conn=conn,
                        tenant_id=tenant_id,
                        contact_ids=[row["id"] for row in numbered],
                        numbers=[row["contact_no"] for row in numbered],
                    )
                stored = {_stored_key(row) for row in inserted}
                created += len(stored)
                errors.extend(
                    RowError(row=c.line, detail=_duplicate(c, "stored"))
                    for c in batch
                    if c.stored_key not in stored
                )
            if start == (starts[-1] if starts else 0):
                # With the last batch's rows: the event is committed with the import's end.
                errors.sort(key=lambda e: e.row)
                await events.emit(
                    conn,
                    tenant_id=tenant_id,
                    event_type="contacts.imported",
                    data=_event_data(created, errors),
                )
    await events.relay_after_commit(services=services, tenant_id=tenant_id)
    return ImportResult(created=created, errors=errors)


EVENT_ERRORS = 100  # the rows refused that an event lists (all are counted)


def _event_data(created: int, errors: list[RowError]) -> dict[str, Any]:
    """``contacts.imported``'s data: the counts, and the first refused rows with why."""
    return {
        "created": created,
        "refused": len(errors),
        "errors": [e.model_dump() for e in errors[:EVENT_ERRORS]],
        "updated_at": datetime.now(UTC).isoformat(),
    }


def _stored_key(row: dict[str, Any]) -> tuple[str | None, ...]:
    if row["contact_no"] is not None:
        return (row["contact_no"],)
    return (None, row["first_name"], row["last_name"], row["email"])
