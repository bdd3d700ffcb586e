"""What the contacts domain does: create, read, list, update and delete within one tenant.

Each function is one unit of work (one transaction). Another tenant's contact is simply not
found (404), never forbidden.
"""

import math
import re
import uuid
from dataclasses import dataclass
from typing import Any, NoReturn

from psycopg import errors as pg_errors

from kalimera.contacts import repository
from kalimera.contacts.models import (
    END_BEFORE_START,
    ContactCreate,
    ContactPage,
    ContactRead,
    ContactStatus,
    ContactUpdate,
)
from kalimera.db import Conn, transaction
from kalimera.errors import Conflict, DomainError, NotFound, Stale, invalid
from kalimera.etags import etag, parse_if_match
from kalimera.paging import contains
from kalimera.phones import e164
from kalimera.services import Services

NOT_FOUND = "Contact not found"
STALE = "The contact changed since it was read (If-Match is stale)"
PHONE_TAKEN = "A contact with this phone number already exists"
# A search made only of digits and phone punctuation is matched without the punctuation, as
# numbers are stored in E.164 ("210 123-4567" finds +302101234567).
PHONEISH = re.compile(r"[\d\s().+-]+")
PHONE_PUNCTUATION = re.compile(r"[\s().-]")


@dataclass(frozen=True, slots=True)
class Tagged:
    """A contact as stored, and its ETag."""

    contact: ContactRead
    etag: str


def _tagged(row: Any) -> Tagged:
    return Tagged(ContactRead.model_validate(row), etag(row["version"]))


def _with_phone(fields: dict[str, Any], region: str) -> dict[str, Any]:
    raw = fields.get("contact_no")
    if raw is None:
        return fields
    try:
        return {**fields, "contact_no": e164(raw, region)}
    except ValueError as exc:
        raise invalid(["body", "contact_no"], str(exc)) from None


def _conflict(exc: pg_errors.IntegrityError, changes: dict[str, Any]) -> DomainError:
    """The client error a constraint violation stands for."""
    constraint = exc.diag.constraint_name
    if constraint == repository.PHONE_TAKEN:
        return Conflict(PHONE_TAKEN, errors=[{"loc": ["body", "contact_no"], "msg": PHONE_TAKEN}])
    if constraint == repository.END_BEFORE_START:
        field = "end_datetime" if "end_datetime" in changes else "start_datetime"
        msg = END_BEFORE_START if field == "end_datetime" else "must not be after end_datetime"
        return invalid(["body", field], msg)
    raise exc


async def create(*, services: Services, tenant_id: uuid.UUID, body: ContactCreate) -> Tagged:
    fields = _with_phone(body.model_dump(), services.settings.default_phone_region)
    try:
        async with transaction(await services.db()) as conn:
            row = await repository.insert(conn=conn, tenant_id=tenant_id, fields=fields)
            await _link_calls(conn, tenant_id, row)
    except (pg_errors.UniqueViolation, pg_errors.CheckViolation) as exc:
        raise _conflict(exc, fields) from None
    return _tagged(row)


async def _link_calls(conn: Conn, tenant_id: uuid.UUID, row: Any) -> None:
    """The calls with the contact's number become its calls; those of a number it no longer
    holds are let go."""
    number = row["contact_no"]
    await repository.link_calls(
        conn=conn,
        tenant_id=tenant_id,
        contact_ids=[row["id"]],
        numbers=[] if number is None else [number],
    )


async def get(*, services: Services, tenant_id: uuid.UUID, contact_id: int) -> Tagged:
    async with transaction(await services.db()) as conn:
        row = await repository.get(conn=conn, tenant_id=tenant_id, contact_id=contact_id)
    if row is None:
        raise NotFound(NOT_FOUND)
    return _tagged(row)


def search_pattern(search: str | None) -> str | None:
    """The ILIKE pattern for a search term (a substring match), or None for no search."""
    term = (search or "").strip()
    if not term:
        return None
    if PHONEISH.fullmatch(term):
        term = PHONE_PUNCTUATION.sub("", term) or term
    return contains(term)


async def list_page(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    page: int,
    per_page: int,
    search: str | None,
    status: ContactStatus | None,
) -> ContactPage:
    """One page of the tenant's contacts, newest first, with the seed's paging fields."""
    async with transaction(await services.db()) as conn:
        found = await repository.page(
            conn=conn,
            tenant_id=tenant_id,
            pattern=search_pattern(search),
            status=None if status is None else status.value,
            limit=per_page,
            offset=(page - 1) * per_page,
        )
    return ContactPage(
        contacts=[ContactRead.model_validate(row) for row in found.rows],
        total=found.total,
        pages=math.ceil(found.total / per_page),
        current_page=page,
    )


async def update(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    contact_id: int,
    body: ContactUpdate,
    if_match: str | None = None,
) -> Tagged:
    """Change only the fields given; the stored period must still end after it starts. With
    ``If-Match``, only the version it names is changed (else 412)."""
    version = parse_if_match(if_match)
    changes = _with_phone(body.changes(), services.settings.default_phone_region)
    if not changes:
        current = await get(services=services, tenant_id=tenant_id, contact_id=contact_id)
        if version is not None and current.etag != etag(version):
            raise Stale(STALE)
        return current
    try:
        async with transaction(await services.db()) as conn:
            row = await repository.update(
                conn=conn,
                tenant_id=tenant_id,
                contact_id=contact_id,
                changes=changes,
                version=version,
            )
            if row is None:
                await _missing_or_stale(conn, tenant_id, contact_id)
            if "contact_no" in changes:
                await _link_calls(conn, tenant_id, row)
    except (pg_errors.UniqueViolation, pg_errors.CheckViolation) as exc:
        raise _conflict(exc, changes) from None
    return _tagged(row)


async def delete(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    contact_id: int,
    if_match: str | None = None,
    erase_conversations: bool = False,
    token_id: uuid.UUID | None = None,
) -> None:
    """Delete the contact; its calls stay (their contact_id is cleared by the foreign key),
    unless ``erase_conversations``: then they are erased too, in the same transaction (a 404
    or 412 erases nothing)."""
    async with transaction(await services.db()) as conn:
        if erase_conversations:
            await repository.erase_calls(
                conn=conn, tenant_id=tenant_id, contact_id=contact_id, token_id=token_id
            )
        deleted = await repository.delete(
            conn=conn, tenant_id=tenant_id, contact_id=contact_id, version=parse_if_match(if_match)
        )
        if not deleted:
            await _missing_or_stale(conn, tenant_id, contact_id)


async def _missing_or_stale(conn: Conn, tenant_id: uuid.UUID, contact_id: int) -> NoReturn:
    """Raise why a write found no row: the contact is not there (404), or not at the version
    its If-Match names (412)."""
    if await repository.get(conn=conn, tenant_id=tenant_id, contact_id=contact_id) is None:
        raise NotFound(NOT_FOUND)
    raise Stale(STALE)
