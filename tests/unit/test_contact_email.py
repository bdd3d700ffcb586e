"""A contact's email is judged exactly as email_validator judges it (offline: no deliverability)."""

import pytest
from email_validator import EmailNotValidError, validate_email

from kalimera.contacts.models import _email


@pytest.mark.parametrize(
    "email",
    [
        "a@example.com",
        "Bob@Example.COM",
        "ü@münchen.de",
        "a@MÜNCHEN.de",
        "x@test",
        "a@x.invalid",
        ".a@x.com",
        "a..b@x.com",
        '"q@x"@x.com',
        "a@-x.com",
        "a@@x.com",
        "@x.com",
        "a@",
        "a@x.com.",
    ],
)
def test_emails_are_judged_exactly_as_email_validator_does(email: str) -> None:
    try:
        expected: str | None = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError:
        expected = None
    try:
        ours: str | None = _email(email)
    except ValueError:
        ours = None
    assert ours == expected
