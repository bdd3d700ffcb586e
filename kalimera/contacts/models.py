"""Pydantic models for contacts: the schema family and the field rules they share.

Phone numbers are normalised in ``kalimera.phones.e164`` rather than here, because the region
for numbers written without a country code is a setting, and the model knows no settings.
"""

from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import DOT_ATOM_TEXT
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

NAMES_REQUIRED = "First name and last name are required"
END_BEFORE_START = "must not be before start_datetime"
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


class Voice(StrEnum):
    MALE = "Male"
    FEMALE = "Female"


class ContactStatus(StrEnum):
    INBOUND = "Inbound"
    OUTBOUND = "Outbound"


def _no_nul(value: str) -> str:
    # Postgres text cannot hold NUL; refusing it here keeps bad input a 422, not a 500.
    if "\x00" in value:
        msg = "must not contain NUL characters"
        raise ValueError(msg)
    return value


def _title_case(value: object) -> object:
    # "male", "MALE" and "Male" all mean Male; anything else is left for the enum to refuse.
    return value.strip().capitalize() if isinstance(value, str) else value


@lru_cache(maxsize=4096)
def _domain(domain: str) -> str:
    """A domain as email-validator normalises it (an import repeats a few domains many times)."""
    return validate_email(f"a@{domain}", check_deliverability=False).domain


def _email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    try:
        if at and DOT_ATOM_TEXT.match(local):
            # The common case: email-validator accepts a plain ASCII local part as it is, so
            # only the domain needs its (slow) checks, once per domain.
            normalized = f"{local}@{_domain(domain)}"
        else:
            normalized = validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        msg = f"not a valid email address: {exc}"
        raise ValueError(msg) from None
    if len(normalized) > 100:
        msg = "must be at most 100 characters"
        raise ValueError(msg)
    return normalized


def _utc(value: datetime) -> datetime:
    # A time written without an offset is taken as UTC.
    msg = "must be between 1900-01-01 and 9999-12-30"
    try:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # the offset moves it past year 1 or 9999
        raise ValueError(msg) from None
    if not EARLIEST <= value <= LATEST:
        raise ValueError(msg)
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=50),
    AfterValidator(_no_nul),
]
Language = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=30),
    AfterValidator(_no_nul),
]
# The raw number as written; ``kalimera.phones.e164`` turns it into E.164.
PhoneInput = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=50),
    AfterValidator(_no_nul),
    Field(
        examples=["+302101234567", "210 123 4567"],
        description="A phone number, stored in E.164; one without a country code is read as in "
        "the region of the setting KALIMERA_DEFAULT_PHONE_REGION",
    ),
]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=254),
    AfterValidator(_email),
    Field(examples=["maria@example.com"], description="An email address (at most 100 characters)"),
]
Moment = Annotated[
    datetime,
    AfterValidator(_utc),
    Field(description="ISO 8601; a time without an offset is taken as UTC"),
]
VoiceInput = Annotated[Voice, BeforeValidator(_title_case)]
StatusInput = Annotated[ContactStatus, BeforeValidator(_title_case)]


def _unset() -> Any:
    """The default of a required field in a partial update: absent means unchanged. The schema
    shows no default, as ``null`` itself is not a valid value."""

    def drop_default(schema: dict[str, Any]) -> None:
        schema.pop("default", None)

    return Field(default=None, json_schema_extra=drop_default)


class ContactBase(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _end_after_start(end: datetime | None, info: ValidationInfo) -> datetime | None:
    # Fields validate in order, so a valid start_datetime is in info.data by now.
    start = info.data.get("start_datetime")
    if start is not None and end is not None and end < start:
        raise ValueError(END_BEFORE_START)
    return end


class ContactCreate(ContactBase):
    """A new contact: the names are required, the rest optional with the seed's defaults."""

    first_name: Name
    last_name: Name
    contact_no: PhoneInput | None = None
    email: Email | None = None
    start_datetime: Moment | None = None
    end_datetime: Moment | None = None
    language: Language = "English"
    voice: VoiceInput = Voice.MALE
    status: StatusInput = ContactStatus.INBOUND

    _period = field_validator("end_datetime")(_end_after_start)


class ContactUpdate(ContactBase):
    """A partial update: only the fields given change; ``null`` clears an optional field.

    The required fields default to None only to mean "not given": ``null`` for them is refused.
    """

    first_name: Name = _unset()
    last_name: Name = _unset()
    contact_no: PhoneInput | None = None
    email: Email | None = None
    start_datetime: Moment | None = None
    end_datetime: Moment | None = None
    language: Language = _unset()
    voice: VoiceInput = _unset()
    status: StatusInput = _unset()

    # Both ends given: checked here; one end given: the database checks it against the other.
    _period = field_validator("end_datetime")(_end_after_start)

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class ContactRead(BaseModel):
    id: int
    first_name: str
    last_name: str
    contact_no: str | None
    email: str | None
    start_datetime: datetime | None
    end_datetime: datetime | None
    language: str
    voice: Voice
    status: ContactStatus
    created_at: datetime
    updated_at: datetime

    @field_validator("start_datetime", "end_datetime", "created_at", "updated_at")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(UTC)


class ContactPage(BaseModel):
    contacts: list[ContactRead]
    total: int
    pages: int
    current_page: int


class ContactDeleted(BaseModel):
    message: str = "Contact deleted successfully"


class RowError(BaseModel):
    row: int = Field(description="The line of the file where the record starts (header = 1)")
    detail: str


class ImportResult(BaseModel):
    created: int
    errors: list[RowError]
