"""HTTP for contacts: parse, authorise, call the service, shape the answer."""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from kalimera.contacts import csv_import, csv_upload, service
from kalimera.contacts.models import (
    NAMES_REQUIRED,
    ContactCreate,
    ContactDeleted,
    ContactPage,
    ContactRead,
    ContactUpdate,
    ImportResult,
    StatusInput,
)
from kalimera.deps import (
    ETAG_HEADER,
    LOCATION_HEADER,
    ContactsRead,
    ContactsWrite,
    IfMatch,
    IfNoneMatch,
    ServicesDep,
    not_modified,
)
from kalimera.problems import Problem, problem_responses

MAX_ID = 2**63 - 1
ContactId = Annotated[int, Path(ge=1, le=MAX_ID, description="The contact's integer id")]
NAME_FIELDS = {("body", "first_name"), ("body", "last_name")}


def _names_missing(exc: RequestValidationError) -> bool:
    """A name absent, null or blank: the seed's 400, not a generic 422."""
    for err in exc.errors():
        if tuple(err.get("loc", ())) not in NAME_FIELDS:
            continue
        value = err.get("input")
        if err.get("type") == "missing" or value is None:
            return True
        if isinstance(value, str) and not value.strip():
            return True
    return False


class ContactRoute(APIRoute):
    """Answers a missing or blank name with 400 ``First name and last name are required``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                if not _names_missing(exc):
                    raise
                errors = [{"loc": list(e["loc"]), "msg": str(e["msg"])} for e in exc.errors()]
                raise Problem(400, NAMES_REQUIRED, errors=errors) from None

        return route_handler


router = APIRouter(prefix="/kalimera/contact", tags=["contacts"], route_class=ContactRoute)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ContactRead,
    responses={
        201: {"headers": {**LOCATION_HEADER, **ETAG_HEADER}},
        **problem_responses(400, 401, 403, 409, 422),
    },
)
async def create_contact(
    body: ContactCreate, principal: ContactsWrite, services: ServicesDep, response: Response
) -> ContactRead:
    """Create a contact; ``language``, ``voice`` and ``status`` default to English, Male and
    Inbound, and ``contact_no`` is stored in E.164."""
    created = await service.create(services=services, tenant_id=principal.tenant_id, body=body)
    response.headers["Location"] = f"{router.prefix}/{created.contact.id}"
    response.headers["ETag"] = created.etag
    return created.contact


@router.get("", response_model=ContactPage, responses=problem_responses(401, 403, 422))
async def list_contacts(
    principal: ContactsRead,
    services: ServicesDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 10,
    search: Annotated[
        str | None,
        Query(
            max_length=100,
            pattern=r"^[^\x00]*$",
            description="A substring of the names, phone number or email (case-insensitive)",
        ),
    ] = None,
    status: StatusInput | None = None,
) -> ContactPage:
    """The tenant's contacts, newest first."""
    return await service.list_page(
        services=services,
        tenant_id=principal.tenant_id,
        page=page,
        per_page=per_page,
        search=search,
        status=status,
    )


@router.post(
    "/import",
    response_model=ImportResult,
    responses=problem_responses(400, 401, 403, 413, 415, 422),
    openapi_extra={"requestBody": csv_upload.REQUEST_BODY},
)
async def import_contacts(
    request: Request, principal: ContactsWrite, services: ServicesDep
) -> ImportResult:
    """Create contacts from a CSV file (a header row of field names, at most 10,000 rows):
    the good rows are stored, each bad row is reported with its line number and the reason."""
    data = await csv_upload.read_upload(request)
    return await csv_import.import_csv(services=services, tenant_id=principal.tenant_id, data=data)


@router.api_route("/import", methods=["GET", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def import_other_methods() -> None:
    """``/import`` is a POST only (not a contact id): other methods are 405, not 422."""
    raise Problem(405, "Method Not Allowed", headers={"Allow": "POST"})


TAGGED: dict[str, Any] = {"headers": ETAG_HEADER}


@router.get(
    "/{contact_id}",
    response_model=ContactRead,
    responses={
        200: TAGGED,
        304: {"description": "Not Modified"},
        **problem_responses(401, 403, 404, 422),
    },
)
async def get_contact(
    contact_id: ContactId,
    principal: ContactsRead,
    services: ServicesDep,
    response: Response,
    if_none_match: IfNoneMatch = None,
) -> Any:
    """One contact; its ``ETag`` serves ``If-Match`` on changes and ``If-None-Match`` here."""
    found = await service.get(
        services=services, tenant_id=principal.tenant_id, contact_id=contact_id
    )
    unchanged = not_modified(if_none_match, found.etag)
    if unchanged is not None:
        return unchanged
    response.headers["ETag"] = found.etag
    return found.contact


@router.put(
    "/{contact_id}",
    response_model=ContactRead,
    responses={200: TAGGED, **problem_responses(400, 401, 403, 404, 409, 412, 422)},
)
async def update_contact(
    contact_id: ContactId,
    body: ContactUpdate,
    principal: ContactsWrite,
    services: ServicesDep,
    response: Response,
    if_match: IfMatch = None,
) -> ContactRead:
    """Change the fields given and no others; ``null`` clears an optional field."""
    updated = await service.update(
        services=services,
        tenant_id=principal.tenant_id,
        contact_id=contact_id,
        body=body,
        if_match=if_match,
    )
    response.headers["ETag"] = updated.etag
    return updated.contact


@router.delete(
    "/{contact_id}",
    response_model=ContactDeleted,
    responses=problem_responses(401, 403, 404, 412, 422),
)
async def delete_contact(
    contact_id: ContactId,
    principal: ContactsWrite,
    services: ServicesDep,
    if_match: IfMatch = None,
    erase_conversations: Annotated[
        bool,
        Query(
            description="Erase the contact's conversations too (rows, recordings, history); "
            "without it they stay, no longer linked to a contact"
        ),
    ] = False,
) -> ContactDeleted:
    """Delete the contact; with ``erase_conversations=true``, its calls too (docs/retention.md:
    their recordings and history go within minutes, by the erasure sweeper)."""
    await service.delete(
        services=services,
        tenant_id=principal.tenant_id,
        contact_id=contact_id,
        if_match=if_match,
        erase_conversations=erase_conversations,
        token_id=principal.token_id,
    )
    return ContactDeleted()
