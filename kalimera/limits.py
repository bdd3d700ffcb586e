"""Limits before work: a pure ASGI guard in front of every route.

FastAPI reads and parses a JSON body before any dependency runs, so the route's own auth comes
too late to protect memory. This guard runs first, and for a request that carries a body:

1. refuses it with 413 when its ``Content-Length`` is over the route's limit, before a byte of
   the body is read (and with ``Connection: close``, so a client still sending is not drained);
2. authenticates the token (401 without a valid one, 503 when the database cannot tell), so a
   request without a valid token never has its body read at all;
3. counts the body as it streams (a chunked body declares no length) and refuses it with 413 as
   soon as it passes the limit;
4. parses a JSON body once, in C (orjson), and refuses nesting deeper than ``MAX_JSON_DEPTH``
   (400) and text Postgres cannot store (NUL, lone UTF-16 surrogates: 422 naming the field), so
   no domain has to remember to, and none can answer such input with a 500.

A request without a body (every GET) passes straight through after a scan of its headers.
Limits: ``JSON_BYTES`` for every route but the two that take files, whose limits are the file's
cap plus room for the form around it. On Azure the Functions host has buffered the request by
the time the app sees it; the guard still refuses it before it is parsed or authenticated twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kalimera.db import DatabaseUnavailable
from kalimera.errors import DomainError, Malformed, TooLarge, invalid
from kalimera.problems import Problem, as_problem, database_unavailable, problem_response
from kalimera.sizecap import SizeCap

MiB = 1024 * 1024
JSON_BYTES = 1 * MiB
# Deeper than any body the API documents (an agent section may nest 32 levels inside the body).
MAX_JSON_DEPTH = 64
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Where the guard leaves the principal it authenticated, for the route's own dependency: a key of
# this request's scope (never the shared lifespan state, which some hosts hand out uncopied).
PRINCIPAL_KEY = "kalimera.principal"


@dataclass(frozen=True, slots=True)
class FileRoute:
    """A route whose body is a file, streamed by its handler rather than parsed as JSON, and
    its limit for a body of a given content type (the file's cap plus the form around it)."""

    method: str
    path: re.Pattern[str]
    limit: Callable[[str], int]


def body_limit(
    routes: Sequence[FileRoute], method: str, path: str, content_type: str
) -> tuple[int, bool]:
    """The largest body the route takes, and whether its handler streams it (a file)."""
    for route in routes:
        if route.method == method and route.path.fullmatch(path):
            return route.limit(content_type), True
    return JSON_BYTES, False


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes its limit: an ``HTTPException`` so
    that FastAPI's body reading and the handlers' own ``except Problem`` let it through to the
    problem+json handler (``errors``) as the 413 it is."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_detail(limit))


def too_large_detail(limit: int) -> str:
    size = f"{limit / MiB:g} MiB" if limit >= MiB else f"{limit:,} bytes"
    return f"The request body is larger than this route's limit of {size}"


def _is_json(content_type: str) -> bool:
    """As FastAPI decides to parse a body as JSON: no content type, or application/*json."""
    media = content_type.partition(";")[0].strip()
    return (
        not media
        or media == "application/json"
        or (media.startswith("application/") and media.endswith("+json"))
    )


class BodyGuard:
    """The guard described in the module docstring. ``files`` are the routes that take a file
    (every other route takes JSON up to ``JSON_BYTES``); ``authenticate(app, header)`` is the
    routes' own token check (``deps.principal_for``), raising ``Problem`` 401."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        files: Sequence[FileRoute],
        authenticate: Callable[[Any, str | None], Awaitable[Any]],
    ) -> None:
        self.app = app
        self.files = tuple(files)
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        length: int | None = None
        chunked = False
        content_type = ""
        authorization: str | None = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                length = int(value) if value.isdigit() else None
            elif key == b"transfer-encoding":
                chunked = True
            elif key == b"content-type":
                content_type = value.decode("latin-1").lower()
            elif key == b"authorization":
                authorization = value.decode("latin-1")
        if not chunked and not length:
            await self.app(scope, receive, send)
            return

        limit, streamed = body_limit(self.files, scope["method"], scope["path"], content_type)
        if length is not None and length > limit:
            await _answer(scope, receive, send, TooLarge(too_large_detail(limit)), close=True)
            return
        try:
            principal = await self.authenticate(scope["app"], authorization)
        except Problem as denied:
            await _answer(scope, receive, send, denied, close=True)
            return
        except DatabaseUnavailable:
            await _answer(scope, receive, send, database_unavailable(), close=True)
            return
        scope[PRINCIPAL_KEY] = principal

        if not streamed and _is_json(content_type):
            body = await _read(receive, limit)
            if body is None:  # the client went away
                return
            if isinstance(body, TooLarge):
                await _answer(scope, receive, send, body, close=True)
                return
            refused = check_json(body)
            if refused is not None:
                await _answer(scope, receive, send, refused)
                return
            receive = _replay(body, receive)
        else:
            receive = _counting(receive, limit)

        await self.app(scope, receive, send)


async def _answer(
    scope: Scope,
    receive: Receive,
    send: Send,
    refusal: Problem | DomainError,
    *,
    close: bool = False,
) -> None:
    problem = as_problem(refusal) if isinstance(refusal, DomainError) else refusal
    headers = dict(problem.headers or {})
    if close:
        headers["Connection"] = "close"
    if problem.status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    response: Response = problem_response(
        problem.status, problem.detail, title=problem.title, errors=problem.errors, headers=headers
    )
    await response(scope, receive, send)


async def _read(receive: Receive, limit: int) -> bytes | TooLarge | None:
    """The whole body, or a 413 as soon as it passes ``limit``; None when the client left."""
    cap = SizeCap(limit=limit, detail=too_large_detail(limit))
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        try:
            chunks.append(cap.take(message.get("body", b"")))
        except TooLarge as refused:
            return refused
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the app: the body already read, then whatever the client says next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _counting(receive: Receive, limit: int) -> Receive:
    cap = SizeCap(limit=limit, detail=too_large_detail(limit))

    async def counted() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            try:
                cap.take(message.get("body", b""))
            except TooLarge:
                raise BodyTooLarge(limit) from None
        return message

    return counted


def check_json(body: bytes) -> DomainError | None:
    """The refusal of JSON the API must not take (too deep, NUL, lone surrogates); None for the
    rest, including JSON that does not parse, which FastAPI answers as it always has (400)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _explain(body)
    # A body holding fewer brackets than the depth limit cannot be nested deeper than it.
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _too_deep(value):
        return _nested_too_deep()
    if b"\\u0000" in body:
        return _refuse_text(value, _has_nul, "must not contain NUL characters")
    return None


def _explain(body: bytes) -> DomainError | None:
    """Why orjson refused ``body``: the standard library's parser takes what orjson does not
    (lone surrogates, NaN, nesting past orjson's own limit) and is asked only then."""
    try:
        value = json.loads(body)
    except RecursionError:
        return _nested_too_deep()
    except ValueError:
        return None
    if _too_deep(value):
        return _nested_too_deep()
    return _refuse_text(
        value, _has_lone_surrogate, "must be valid Unicode text (a lone UTF-16 surrogate)"
    ) or _refuse_text(value, _has_nul, "must not contain NUL characters")


def _nested_too_deep() -> Malformed:
    # 400, as for JSON that does not parse: the structure is refused before any field is read.
    return Malformed(
        f"The request body is nested more than {MAX_JSON_DEPTH} levels deep",
        errors=[{"loc": ["body"], "msg": f"nested more than {MAX_JSON_DEPTH} levels deep"}],
    )


def _too_deep(value: Any) -> bool:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return False


def _has_nul(text: str) -> bool:
    return "\x00" in text


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _refuse_text(value: Any, bad: Callable[[str], bool], msg: str) -> DomainError | None:
    """A 422 naming the first field (or key) whose text is ``bad``; None when there is none."""
    stack: list[tuple[Any, list[str | int]]] = [(value, ["body"])]
    while stack:
        item, loc = stack.pop()
        if isinstance(item, str):
            if bad(item):
                return _invalid_text(loc, msg)
        elif isinstance(item, dict):
            for key, child in item.items():
                if bad(key):
                    return _invalid_text(loc, f"a field name {msg}")
                stack.append((child, [*loc, key]))
        elif isinstance(item, list):
            stack.extend((child, [*loc, i]) for i, child in enumerate(item))
    return None


def _invalid_text(loc: list[str | int], msg: str) -> DomainError:
    field = ".".join(str(part) for part in loc[1:]) or "body"
    return invalid(loc, msg, detail=f"{field}: {msg}")
