"""Every error as application/problem+json (RFC 9457), never a stack trace.

The one place a failure becomes an HTTP status: the domain's errors (``kalimera.errors``,
imported as ``domain``) by ``STATUS``, request validation, Starlette's own HTTP errors, an
unavailable database, and anything unexpected (500, logged). ``Problem`` is for what only HTTP
has (401, 403, 405, 429).
"""

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from kalimera import errors as domain
from kalimera.db import DatabaseUnavailable
from kalimera.routing import flat_routes

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = "5"


class Problem(Exception):
    """An error the API answers with: status, a short title, a detail for the caller."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.errors = errors
        self.headers = headers


class NotFound(Problem):
    def __init__(self, detail: str = "Not found") -> None:
        super().__init__(404, detail)


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only location and message: pydantic's `input` and `ctx` can echo secrets back.
    return [
        {"loc": list(err.get("loc", ())), "msg": str(err.get("msg", ""))} for err in exc.errors()
    ]


async def _on_problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(
        exc.status, exc.detail, title=exc.title, errors=exc.errors, headers=exc.headers
    )


STATUS: dict[type[domain.DomainError], int] = {
    domain.Malformed: 400,
    domain.Forbidden: 403,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.InProgress: 409,
    domain.Stale: 412,
    domain.TooLarge: 413,
    domain.Unsupported: 415,
    domain.Invalid: 422,
    domain.Unavailable: 503,
    domain.Misconfigured: 500,
}


def status_of(exc: domain.DomainError) -> int:
    return next(status for kind, status in STATUS.items() if isinstance(exc, kind))


def as_problem(exc: domain.DomainError) -> Problem:
    """The problem a domain error is answered with: its status from ``STATUS``, and
    ``Retry-After`` when it says when to retry. For the ASGI guards, which answer for
    themselves; the routes' errors come through ``_on_domain_error``."""
    retry_after = getattr(exc, "retry_after", None)
    return Problem(
        status_of(exc),
        exc.detail,
        title=exc.title,
        errors=exc.errors,
        headers={"Retry-After": str(retry_after)} if retry_after is not None else None,
    )


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, domain.DomainError)
    return await _on_problem(request, as_problem(exc))


async def _on_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    if any(err.get("type") == "json_invalid" for err in exc.errors()):
        return problem_response(400, "The request body is not valid JSON", errors=errors)
    return problem_response(422, domain.NOT_VALID, errors=errors)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(exc.status_code, detail, headers=headers or None)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path (a path match with another method is a
    partial match); Starlette's own header names only the first route's methods."""
    methods: set[str] = set()
    for route in flat_routes(request.app.router.routes):
        if route.matches(request.scope)[0] is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def database_unavailable() -> Problem:
    return Problem(
        503,
        "The database is unavailable; retry shortly",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


async def _on_db_down(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("database unavailable: %r", str(exc))
    return await _on_problem(request, database_unavailable())


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.error(
        "unhandled error on %s %s: %s",
        request.method,
        request.url.path,
        type(exc).__name__,
        exc_info=exc,
    )
    return problem_response(500, "An unexpected error occurred")


def install(app: FastAPI) -> None:
    """Register the problem+json handlers on the app."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(domain.DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(DatabaseUnavailable, _on_db_down)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem+json errors a route documents."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
