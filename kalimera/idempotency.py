"""``Idempotency-Key``: a request retried with the same key gets the first answer back.

As the IETF draft "The Idempotency-Key HTTP Header Field" and Stripe do it: keys are the
client's (1 to 255 visible ASCII characters), scoped to the tenant, kept 24 hours. The first
request with a key holds it while it runs; a second one meanwhile is **409** (retry shortly). A
successful answer (2xx) is stored with the request's fingerprint and replayed as is (same status
and body, plus ``Idempotent-Replayed: true``) to a retry that asks for the same thing; the same
key with a different request is **422**. A failed request frees its key, so that the client can
correct the request and send it again under the same key. A holder that dies (a crashed
instance) frees the key after ``LEASE``.

Nothing here knows HTTP: ``once`` answers the service's own result or a ``Replay``, which the
routes turn into a response with ``kalimera.deps.answer`` (where the header is read, too).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from psycopg.types.json import Json
from pydantic import BaseModel

from kalimera.db import Conn, transaction
from kalimera.errors import InProgress, Invalid

if TYPE_CHECKING:
    from kalimera.services import Services

M = TypeVar("M", bound=BaseModel)

KEY_LIFETIME = timedelta(hours=24)
LEASE = timedelta(minutes=15)  # longer than any upload may take


@dataclass(frozen=True, slots=True)
class Replay:
    """The answer a retry gets: the first request's status and body, as they were."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Answer:
    """A stored answer to a completed request."""

    operation: str
    fingerprint: str
    status: int
    body: dict[str, Any]

    def replay(self, *, fingerprint: str, operation: str) -> Replay:
        """The stored answer, if the retry asks for what the first request asked."""
        if (fingerprint, operation) != (self.fingerprint, self.operation):
            raise Invalid("This Idempotency-Key was used for a different request; use a new key")
        return Replay(status=self.status, body=self.body)


@dataclass(frozen=True, slots=True)
class Claim:
    """The key, held by this request until ``complete`` or ``release``."""

    services: Services
    tenant_id: uuid.UUID
    key: str

    async def complete(self, *, fingerprint: str, status: int, body: dict[str, Any]) -> None:
        async with transaction(await self.services.db()) as conn:
            await conn.execute(
                "UPDATE kalimera_idempotency_keys SET fingerprint = %(fingerprint)s,"
                " status = %(status)s, body = %(body)s, locked_until = NULL"
                " WHERE tenant_id = %(tenant_id)s AND key = %(key)s",
                {
                    "tenant_id": self.tenant_id,
                    "key": self.key,
                    "fingerprint": fingerprint,
                    "status": status,
                    "body": Json(body),
                },
            )

    async def release(self) -> None:
        async with transaction(await self.services.db()) as conn:
            await conn.execute(
                "DELETE FROM kalimera_idempotency_keys"
                " WHERE tenant_id = %(tenant_id)s AND key = %(key)s AND status IS NULL",
                {"tenant_id": self.tenant_id, "key": self.key},
            )


def fingerprint(request: dict[str, Any]) -> str:
    """A request's fingerprint: the hash of what it asks for, as JSON with sorted keys."""
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


async def claim(
    *, services: Services, tenant_id: uuid.UUID, key: str, operation: str
) -> Claim | Answer:
    """Hold ``key`` for this request (a ``Claim``), or the ``Answer`` an earlier request with
    it got; 409 while another request holds it."""
    async with transaction(await services.db()) as conn:
        if await _insert(conn=conn, tenant_id=tenant_id, key=key, operation=operation):
            return Claim(services, tenant_id, key)
        cur = await conn.execute(
            "SELECT operation, fingerprint, status, body FROM kalimera_idempotency_keys"
            " WHERE tenant_id = %(tenant_id)s AND key = %(key)s",
            {"tenant_id": tenant_id, "key": key},
        )
        row = await cur.fetchone()
    if row is None:  # the holder released it between our two statements: ask again
        return await claim(services=services, tenant_id=tenant_id, key=key, operation=operation)
    if row["status"] is None:
        raise InProgress("A request with this Idempotency-Key is in progress; retry shortly")
    return Answer(
        operation=row["operation"],
        fingerprint=row["fingerprint"],
        status=row["status"],
        body=row["body"],
    )


async def _insert(*, conn: Conn, tenant_id: uuid.UUID, key: str, operation: str) -> bool:
    """Take the key if it is free; the tenant's expired keys (and dead holders') go first."""
    await conn.execute(
        "DELETE FROM kalimera_idempotency_keys WHERE tenant_id = %(tenant_id)s"
        " AND (expires_at < now() OR (status IS NULL AND locked_until < now()))",
        {"tenant_id": tenant_id},
    )
    cur = await conn.execute(
        "INSERT INTO kalimera_idempotency_keys"
        " (tenant_id, key, operation, locked_until, expires_at)"
        " VALUES (%(tenant_id)s, %(key)s, %(operation)s, now() + %(lease)s, now() + %(life)s)"
        " ON CONFLICT (tenant_id, key) DO NOTHING RETURNING key",
        {
            "tenant_id": tenant_id,
            "key": key,
            "operation": operation,
            "lease": LEASE,
            "life": KEY_LIFETIME,
        },
    )
    return await cur.fetchone() is not None


async def once(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    key: str | None,
    operation: str,
    status: int,
    run: Callable[[], Awaitable[tuple[M, str]]],
    fingerprint: Callable[[], Awaitable[str]],
) -> M | Replay:
    """Do ``run`` (which answers and fingerprints the request) once per key: a retry gets the
    stored answer when ``fingerprint`` (the retry's, computed without doing anything) matches."""
    if key is None:
        return (await run())[0]
    held = await claim(services=services, tenant_id=tenant_id, key=key, operation=operation)
    if isinstance(held, Answer):
        return held.replay(fingerprint=await fingerprint(), operation=operation)
    try:
        answer, print_ = await run()
    except BaseException:
        await held.release()
        raise
    await held.complete(fingerprint=print_, status=status, body=answer.model_dump(mode="json"))
    return answer
