"""HTTP for a tenant's webhook endpoints (``webhooks:read`` / ``webhooks:write``): parse,
authorise, call the service. Another tenant's endpoint is 404."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from kalimera.deps import LOCATION_HEADER, ServicesDep, WebhooksRead, WebhooksWrite
from kalimera.problems import problem_responses
from kalimera.webhooks import service
from kalimera.webhooks.models import (
    Accepted,
    DeliveryPage,
    ReplayRequest,
    WebhookCreate,
    WebhookCreated,
    WebhookDeleted,
    WebhookList,
    WebhookRead,
    WebhookSecret,
    WebhookUpdate,
)

router = APIRouter(prefix="/kalimera/webhooks", tags=["webhooks"])

Page = Annotated[int, Query(ge=1, le=1_000_000, description="From 1")]
Limit = Annotated[int, Query(ge=1, le=100, description="At most 100")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    responses={
        201: {"headers": LOCATION_HEADER},
        **problem_responses(400, 401, 403, 409, 413, 422),
    },
)
async def create_webhook(
    body: WebhookCreate, principal: WebhooksWrite, services: ServicesDep, response: Response
) -> WebhookCreated:
    """Add an endpoint (at most 20 a tenant); the answer is the one time its secret is shown."""
    created = await service.create(services=services, tenant_id=principal.tenant_id, body=body)
    response.headers["Location"] = f"{router.prefix}/{created.id}"
    return created


@router.get("", response_model=WebhookList, responses=problem_responses(401, 403))
async def list_webhooks(principal: WebhooksRead, services: ServicesDep) -> WebhookList:
    """The tenant's endpoints, oldest first (never a secret)."""
    return await service.list_all(services=services, tenant_id=principal.tenant_id)


@router.get(
    "/{webhook_id}", response_model=WebhookRead, responses=problem_responses(401, 403, 404, 422)
)
async def get_webhook(
    webhook_id: uuid.UUID, principal: WebhooksRead, services: ServicesDep
) -> WebhookRead:
    return await service.get(
        services=services, tenant_id=principal.tenant_id, endpoint_id=webhook_id
    )


@router.patch(
    "/{webhook_id}",
    response_model=WebhookRead,
    responses=problem_responses(400, 401, 403, 404, 413, 422),
)
async def update_webhook(
    webhook_id: uuid.UUID, body: WebhookUpdate, principal: WebhooksWrite, services: ServicesDep
) -> WebhookRead:
    """Change what is given; enabling an endpoint Kalimera disabled clears the reason."""
    return await service.update(
        services=services, tenant_id=principal.tenant_id, endpoint_id=webhook_id, body=body
    )


@router.delete(
    "/{webhook_id}", response_model=WebhookDeleted, responses=problem_responses(401, 403, 404, 422)
)
async def delete_webhook(
    webhook_id: uuid.UUID, principal: WebhooksWrite, services: ServicesDep
) -> WebhookDeleted:
    """Delete the endpoint; its pending deliveries are dropped."""
    await service.delete(services=services, tenant_id=principal.tenant_id, endpoint_id=webhook_id)
    return WebhookDeleted()


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookSecret,
    responses=problem_responses(401, 403, 404, 422),
)
async def rotate_webhook_secret(
    webhook_id: uuid.UUID, principal: WebhooksWrite, services: ServicesDep
) -> WebhookSecret:
    """A new secret, shown this once; the previous one signs beside it for 24 h."""
    return await service.rotate_secret(
        services=services, tenant_id=principal.tenant_id, endpoint_id=webhook_id
    )


@router.post(
    "/{webhook_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problem_responses(401, 403, 404, 422),
)
async def test_webhook(
    webhook_id: uuid.UUID, principal: WebhooksWrite, services: ServicesDep
) -> Accepted:
    """Send a `webhook.test` event to this endpoint (whatever event types it takes)."""
    return await service.send_test(
        services=services, tenant_id=principal.tenant_id, endpoint_id=webhook_id
    )


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryPage,
    responses=problem_responses(401, 403, 404, 422),
)
async def list_webhook_deliveries(
    webhook_id: uuid.UUID,
    principal: WebhooksRead,
    services: ServicesDep,
    status: Literal["pending", "delivered", "failed"] | None = None,
    page: Page = 1,
    limit: Limit = 20,
) -> DeliveryPage:
    """Each delivery to this endpoint, newest first, with every attempt: its time, HTTP status,
    latency and error."""
    return await service.deliveries(
        services=services,
        tenant_id=principal.tenant_id,
        endpoint_id=webhook_id,
        status=status,
        page=page,
        limit=limit,
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problem_responses(401, 403, 404, 422),
)
async def retry_webhook_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, principal: WebhooksWrite, services: ServicesDep
) -> Accepted:
    """Try the delivery again now, with a fresh retry schedule and the same `webhook-id`."""
    return await service.retry(
        services=services,
        tenant_id=principal.tenant_id,
        endpoint_id=webhook_id,
        delivery_id=delivery_id,
    )


@router.post(
    "/{webhook_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problem_responses(400, 401, 403, 404, 413, 422),
)
async def replay_webhook(
    webhook_id: uuid.UUID, body: ReplayRequest, principal: WebhooksWrite, services: ServicesDep
) -> Accepted:
    """Send every event since `since` again (of the types the endpoint takes), each with its
    original `webhook-id`."""
    return await service.replay(
        services=services, tenant_id=principal.tenant_id, endpoint_id=webhook_id, since=body.since
    )
