"""What went wrong, in the domain's words.

Services, the ingestion and the CLI raise these; none of them knows HTTP. ``kalimera.problems``
maps each kind to its status and problem+json body, once, so a service can be called from a
trigger or a command without a web framework in its way, and the API's statuses live in one
table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError

NOT_VALID = "The request is not valid"


class DomainError(Exception):
    """A failure the caller can act on: ``detail`` says what, ``errors`` (each a ``loc`` path and
    a ``msg``) where."""

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.title = title


class Malformed(DomainError):
    """The input can not be read at all (a broken multipart body, no file part)."""


class NotFound(DomainError):
    def __init__(self, detail: str = "Not found") -> None:
        super().__init__(detail)


class Conflict(DomainError):
    """The input is valid but clashes with what is stored (a duplicate, a key reused)."""


class InProgress(Conflict):
    """Another request holding the same key is still running; the caller retries after
    ``retry_after`` seconds."""

    def __init__(self, detail: str, *, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Stale(DomainError):
    """A precondition on the stored version (``If-Match``) no longer holds."""


class TooLarge(DomainError):
    """The input is over a size the product sets."""


class Unsupported(DomainError):
    """The input's type or encoding is not one the product reads."""


class Forbidden(DomainError):
    """The caller may not do this, whatever the input: a token granting a scope, or an expiry,
    beyond what the token asking for it has."""


class Invalid(DomainError):
    """The input is readable but breaks a rule; ``errors`` name the fields."""


class Unavailable(DomainError):
    """A store or a concurrent request holds the work up; the caller retries after
    ``retry_after`` seconds."""

    def __init__(self, detail: str, *, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Misconfigured(DomainError):
    """The deployment cannot serve the request as configured (a stored secret that no
    configured key decrypts); ``detail`` says what the operator must fix, never a secret."""


def invalid(loc: Sequence[str | int], msg: str, *, detail: str = NOT_VALID) -> Invalid:
    """The one "not valid" error: one field (``loc``, as pydantic writes it) and what is wrong."""
    return Invalid(detail, errors=[{"loc": list(loc), "msg": msg}])


def invalid_fields(exc: ValidationError, *, under: Sequence[str | int] = ("body",)) -> Invalid:
    """The "not valid" error for a model that refused its input: each field's path below
    ``under`` (where the input sat in the request) and what is wrong, never the input itself
    (it may be a secret)."""
    return Invalid(
        NOT_VALID,
        errors=[
            {"loc": [*under, *err["loc"]], "msg": err["msg"]}
            for err in exc.errors(include_url=False, include_input=False)
        ],
    )
