"""``GET /kalimera/health``: one check per dependency, each bounded in time."""

import asyncio
from collections.abc import Awaitable
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from kalimera.deps import ServicesDep
from kalimera.services import Services

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_SECONDS = 1.5


class Health(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    checks: dict[str, Literal["ok", "down"]]


async def _check(probe: Awaitable[object]) -> Literal["ok", "down"]:
    try:
        result = await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)
    except Exception:  # noqa: BLE001 - any failure of a probe means the dependency is down
        return "down"
    return "down" if result is False else "ok"


async def _postgres(services: Services) -> None:
    pool = await services.db()
    async with pool.connection(timeout=CHECK_TIMEOUT_SECONDS) as conn:
        await conn.execute("SELECT 1")


async def _storage(services: Services) -> None:
    container = services.blobs.get_container_client(services.settings.voice_container)
    await container.get_container_properties()


@router.get(
    "/kalimera/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "Postgres is unreachable"}},
)
async def health(services: ServicesDep) -> JSONResponse:
    """Postgres, Redis and Storage checks; 503 when Postgres (without which nothing works) is
    down, 200 ``degraded`` when only the cache or storage is."""
    postgres, redis, storage = await asyncio.gather(
        _check(_postgres(services)), _check(services.cache.ping()), _check(_storage(services))
    )
    checks = {"postgres": postgres, "redis": redis, "storage": storage}
    if postgres == "down":
        status, code = "unavailable", 503
    elif "down" in checks.values():
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    body = Health(status=status, checks=checks)  # type: ignore[arg-type]
    headers = {"Retry-After": "5"} if code == 503 else None
    return JSONResponse(body.model_dump(), status_code=code, headers=headers)
