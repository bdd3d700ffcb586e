"""``deliver_webhook``: one attempt of one delivery, from its queue message.

The message names the delivery and its generation. The worker claims the delivery (a stale or
duplicated message finds nothing and is dropped), checks the address, POSTs the signed event to
the checked address, and records the attempt: delivered (2xx), failed and the endpoint disabled
(410), or the next try queued with the schedule's delay as the message's visibility delay, so no
worker waits. After the last try the delivery is ``failed``, kept, retryable and replayable.

A receiver costs at most one attempt's timeout (10 s, the whole exchange) and 4 KiB of its
answer; redirects are not followed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from kalimera import outbox
from kalimera.db import transaction
from kalimera.webhooks import address, repository
from kalimera.webhooks.service import unseal
from kalimera.webhooks.signing import signature_header

if TYPE_CHECKING:
    from kalimera.services import Services

logger = logging.getLogger(__name__)

# The waits before each retry (docs/webhooks.md): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
JITTER = 0.2
MAX_READ = 4096  # bytes of an answer read and kept
DISABLE_AFTER_DAYS = 5
RESCUE_AFTER_SECONDS = 900
USER_AGENT = "Kalimera-Webhooks/1"
MAX_CLIENTS = 256


class Busy(RuntimeError):
    """Another worker holds this delivery: the queue tries the message again later."""


def retry_delay(tries: int, rand: random.Random | None = None) -> int | None:
    """Seconds before the next try after ``tries`` failed ones (±20 %); None after the last."""
    if tries > len(SCHEDULE):
        return None
    base = SCHEDULE[tries - 1]
    jitter = (rand or random).uniform(-JITTER, JITTER)
    return max(1, round(base * (1 + jitter)))


def body_of(event_type: str, created_at: datetime, data: dict[str, Any]) -> bytes:
    """The event as it is POSTed: ``{"type", "timestamp", "data"}``."""
    timestamp = created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return orjson.dumps({"type": event_type, "timestamp": timestamp, "data": data})


def _message(body: bytes | str) -> tuple[uuid.UUID, uuid.UUID, int] | None:
    try:
        parsed = orjson.loads(body)
        return (
            uuid.UUID(parsed["tenant_id"]),
            uuid.UUID(parsed["delivery_id"]),
            int(parsed["generation"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


async def handle(*, services: Services, body: bytes | str) -> str:
    """One queue message: what became of it (``delivered``, ``retry``, ``failed``, ``stale``).
    Raises ``Busy`` (or a database error) to leave the message to the queue's retries."""
    parsed = _message(body)
    if parsed is None:
        logger.error("webhook message not understood, dropped: %r", body[:200])
        return "stale"
    tenant_id, delivery_id, generation = parsed
    timeout = services.settings.webhook_timeout_seconds
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        row = await repository.claim(
            conn=conn,
            tenant_id=tenant_id,
            delivery_id=delivery_id,
            generation=generation,
            hold=timeout + 30,
        )
        if row is None:
            if await repository.held_elsewhere(
                conn=conn, tenant_id=tenant_id, delivery_id=delivery_id, generation=generation
            ):
                msg = f"delivery {delivery_id} is being sent by another worker"
                raise Busy(msg)
            return "stale"
    if not row["enabled"]:
        outcome = _Outcome(None, 0, "the endpoint is disabled")
    else:
        outcome = await attempt(services=services, row=row, tenant_id=tenant_id)
    return await _record(
        services=services, tenant_id=tenant_id, row=row, generation=generation, outcome=outcome
    )


class _Outcome:
    def __init__(self, status: int | None, latency_ms: int, error: str | None) -> None:
        self.status = status
        self.latency_ms = latency_ms
        self.error = error

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


async def attempt(*, services: Services, row: dict[str, Any], tenant_id: uuid.UUID) -> _Outcome:
    """POST the event once; its status, latency and error (never raises for the receiver)."""
    settings = services.settings
    secrets = [unseal(services, tenant_id, row["endpoint_id"], row["secret"])]
    if row["previous_secret"]:
        secrets.append(unseal(services, tenant_id, row["endpoint_id"], row["previous_secret"]))
    body = body_of(row["type"], row["created_at"], row["data"])
    started = time.monotonic()
    try:
        async with asyncio.timeout(settings.webhook_timeout_seconds):
            target = await address.check(row["url"], development=settings.is_development)
            timestamp = int(time.time())
            headers = {
                "Host": target.host_header,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "webhook-id": row["msg_id"],
                "webhook-timestamp": str(timestamp),
                "webhook-signature": signature_header(secrets, row["msg_id"], timestamp, body),
            }
            client = _client(services, target)
            request = client.build_request(
                "POST",
                target.connect_url,
                content=body,
                headers=headers,
                extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
            )
            response = await client.send(request, stream=True)
            try:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= MAX_READ:
                        break
            finally:
                await response.aclose()
    except address.Refused as exc:
        return _Outcome(None, _ms(started), f"refused: {exc}")
    except TimeoutError:
        return _Outcome(None, _ms(started), "timed out")
    except httpx.HTTPError as exc:
        return _Outcome(None, _ms(started), f"{type(exc).__name__}: {exc}"[:300])
    status = response.status_code
    error = None if 200 <= status < 300 else f"HTTP {status}"
    return _Outcome(status, _ms(started), error)


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _client(services: Services, target: address.Target) -> httpx.AsyncClient:
    """A client per host (kept alive across attempts): pooled connections are keyed by the
    address, so two hosts on one address must not share one (TLS names the host)."""
    clients = services.http_clients
    client = clients.get(target.host)
    if client is None:
        if len(clients) >= MAX_CLIENTS:
            oldest = next(iter(clients))
            _ = asyncio.get_running_loop().create_task(clients.pop(oldest).aclose())
        client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=services.settings.webhook_timeout_seconds,
            trust_env=False,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
        )
        clients[target.host] = client
    return client


async def _record(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    row: dict[str, Any],
    generation: int,
    outcome: _Outcome,
) -> str:
    tries = int(row["tries"]) + 1
    gone = outcome.status == 410
    retry_in = None if outcome.delivered or gone or not row["enabled"] else retry_delay(tries)
    status = "delivered" if outcome.delivered else "pending" if retry_in else "failed"
    entry = {
        "at": datetime.now(UTC).isoformat(),
        "status": outcome.status,
        "latency_ms": outcome.latency_ms,
        "error": outcome.error,
    }
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        await repository.record_attempt(
            conn=conn,
            tenant_id=tenant_id,
            delivery_id=row["id"],
            generation=generation,
            attempt=entry,
            status=status,
            retry_in=retry_in,
        )
        if outcome.delivered:
            await repository.endpoint_succeeded(
                conn=conn, tenant_id=tenant_id, endpoint_id=row["endpoint_id"]
            )
        elif row["enabled"]:
            disabled = await repository.endpoint_failed(
                conn=conn,
                tenant_id=tenant_id,
                endpoint_id=row["endpoint_id"],
                disable_after_days=DISABLE_AFTER_DAYS,
                gone=gone,
            )
            if disabled:
                logger.warning(
                    "webhook endpoint disabled: %s",
                    disabled,
                    extra={"tenant_id": str(tenant_id), "endpoint_id": str(row["endpoint_id"])},
                )
    if retry_in:
        await outbox.relay_after_commit(
            services=services, tenant_id=tenant_id, outbox=outbox.WEBHOOKS
        )
        return "retry"
    return status


async def sweep(*, services: Services) -> int:
    """The relay timer's work: queue again what was lost, then relay the outbox."""
    async with transaction(await services.db(), system=True) as conn:
        rescued = await repository.rescue_lost(
            conn=conn, overdue_seconds=RESCUE_AFTER_SECONDS, limit=outbox.BATCH
        )
    if rescued:
        logger.warning("webhooks: %d pending deliveries had no message; queued again", rescued)
    return await outbox.sweep(services=services, outbox=outbox.WEBHOOKS)
