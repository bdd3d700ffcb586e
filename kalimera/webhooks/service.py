"""What a tenant does with its webhook endpoints: create (the secret shown once), read, change,
delete, rotate the secret, send a test, read the deliveries, retry one, replay since a time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kalimera import events
from kalimera.db import transaction
from kalimera.errors import Conflict, NotFound
from kalimera.secretbox import cipher
from kalimera.webhooks import address, repository
from kalimera.webhooks.models import (
    MAX_ENDPOINTS,
    Accepted,
    DeliveryPage,
    DeliveryRead,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookRead,
    WebhookSecret,
    WebhookUpdate,
)
from kalimera.webhooks.signing import new_secret

if TYPE_CHECKING:
    from kalimera.services import Services

NOT_FOUND = "Webhook not found"
ROTATION_HOURS = 24


def associated_data(tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> bytes:
    """What a sealed secret is bound to: a ciphertext copied to another endpoint does not open."""
    return b"webhook" + tenant_id.bytes + endpoint_id.bytes


def seal(services: Services, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, secret: str) -> str:
    return cipher(services.settings).encrypt(secret, associated_data(tenant_id, endpoint_id))


def unseal(services: Services, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, sealed: str) -> str:
    opened: str = cipher(services.settings).decrypt(sealed, associated_data(tenant_id, endpoint_id))
    return opened


async def create(
    *, services: Services, tenant_id: uuid.UUID, body: WebhookCreate
) -> WebhookCreated:
    await address.check_for_api(body.url, development=services.settings.is_development)
    endpoint_id = uuid.uuid4()
    secret = new_secret()
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        if await repository.count_endpoints(conn=conn, tenant_id=tenant_id) >= MAX_ENDPOINTS:
            msg = f"A tenant has at most {MAX_ENDPOINTS} webhook endpoints: delete one first"
            raise Conflict(msg)
        row = await repository.insert_endpoint(
            conn=conn,
            tenant_id=tenant_id,
            id=endpoint_id,
            url=body.url,
            events=list(dict.fromkeys(e.value for e in body.events)),
            description=body.description,
            enabled=body.enabled,
            secret=seal(services, tenant_id, endpoint_id, secret),
        )
    return WebhookCreated.model_validate({**row, "secret": secret})


async def list_all(*, services: Services, tenant_id: uuid.UUID) -> WebhookList:
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        rows = await repository.list_endpoints(conn=conn, tenant_id=tenant_id)
    return WebhookList(items=[WebhookRead.model_validate(r) for r in rows])


async def get(*, services: Services, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookRead:
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        row = await repository.get_endpoint(conn=conn, tenant_id=tenant_id, endpoint_id=endpoint_id)
    if row is None:
        raise NotFound(NOT_FOUND)
    return WebhookRead.model_validate(row)


async def update(
    *, services: Services, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, body: WebhookUpdate
) -> WebhookRead:
    if body.url is not None:
        await address.check_for_api(body.url, development=services.settings.is_development)
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        row = await repository.update_endpoint(
            conn=conn,
            tenant_id=tenant_id,
            endpoint_id=endpoint_id,
            url=body.url,
            events=None
            if body.events is None
            else list(dict.fromkeys(e.value for e in body.events)),
            description=body.description,
            enabled=body.enabled,
        )
    if row is None:
        raise NotFound(NOT_FOUND)
    return WebhookRead.model_validate(row)


async def delete(*, services: Services, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        deleted = await repository.delete_endpoint(
            conn=conn, tenant_id=tenant_id, endpoint_id=endpoint_id
        )
    if not deleted:
        raise NotFound(NOT_FOUND)


async def rotate_secret(
    *, services: Services, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookSecret:
    """A new secret; the current one keeps signing beside it for ``ROTATION_HOURS``."""
    secret = new_secret()
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        until = await repository.rotate_secret(
            conn=conn,
            tenant_id=tenant_id,
            endpoint_id=endpoint_id,
            secret=seal(services, tenant_id, endpoint_id, secret),
            hours=ROTATION_HOURS,
        )
    if until is None:
        raise NotFound(NOT_FOUND)
    return WebhookSecret(secret=secret, previous_secret_expires_at=until)


async def send_test(
    *, services: Services, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> Accepted:
    data: dict[str, Any] = {"webhook_id": str(endpoint_id), "message": "A test from Kalimera"}
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        if await repository.get_endpoint(conn=conn, tenant_id=tenant_id, endpoint_id=endpoint_id):
            await repository.test_delivery(
                conn=conn, tenant_id=tenant_id, endpoint_id=endpoint_id, data=data
            )
        else:
            raise NotFound(NOT_FOUND)
    await events.relay_after_commit(services=services, tenant_id=tenant_id)
    return Accepted(deliveries=1)


async def deliveries(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    status: str | None,
    page: int,
    limit: int,
) -> DeliveryPage:
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        if not await repository.get_endpoint(
            conn=conn, tenant_id=tenant_id, endpoint_id=endpoint_id
        ):
            raise NotFound(NOT_FOUND)
        found = await repository.deliveries_page(
            conn=conn,
            tenant_id=tenant_id,
            endpoint_id=endpoint_id,
            status=status,
            limit=limit,
            offset=(page - 1) * limit,
        )
    return DeliveryPage(
        items=[DeliveryRead.model_validate(r) for r in found.rows],
        total=found.total,
        page=page,
        limit=limit,
    )


async def retry(
    *, services: Services, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> Accepted:
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        queued = await repository.restart_delivery(
            conn=conn, tenant_id=tenant_id, endpoint_id=endpoint_id, delivery_id=delivery_id
        )
    if not queued:
        raise NotFound("Delivery not found")
    await events.relay_after_commit(services=services, tenant_id=tenant_id)
    return Accepted(deliveries=1)


async def replay(
    *, services: Services, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, since: datetime
) -> Accepted:
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        if not await repository.get_endpoint(
            conn=conn, tenant_id=tenant_id, endpoint_id=endpoint_id
        ):
            raise NotFound(NOT_FOUND)
        count = await repository.replay(
            conn=conn, tenant_id=tenant_id, endpoint_id=endpoint_id, since=since.astimezone(UTC)
        )
    await events.relay_after_commit(services=services, tenant_id=tenant_id)
    return Accepted(deliveries=count)
