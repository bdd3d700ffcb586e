"""Health: readiness (``GET /kalimera/health``) and liveness (``GET /kalimera/health/live``).

Readiness runs one check per dependency, each bounded in time, and its answer is kept for
``READY_CACHE_SECONDS``: however many callers poll it (load balancers, probes, a flood), the
checks run at most once a second per instance and take at most one pool connection. An
``unavailable`` answer is not kept, so a recovered database shows at once; concurrent callers
still share one run of the checks, so a flood during an outage makes one attempt at a time. Liveness
says only that the process and its event loop answer: it touches no dependency, so it is what a
platform should restart on (a database outage is not cured by restarting the app).
"""

import asyncio
import time
from collections.abc import Awaitable
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from kalimera.deps import ServicesDep
from kalimera.services import Services
from kalimera.singleflight import SingleFlight

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_SECONDS = 1.5
READY_CACHE_SECONDS = 1.0


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


class Live(BaseModel):
    status: Literal["ok"] = "ok"


@router.get("/kalimera/health/live", response_model=Live)
async def get_liveness() -> Live:
    """Liveness: the process answers. No dependency is checked and no connection taken."""
    return Live()


class Readiness:
    """The last readiness answer, kept ``READY_CACHE_SECONDS``; concurrent callers of an
    expired answer share one run of the checks."""

    def __init__(self) -> None:
        self._answer: tuple[Health, int] | None = None
        self._expires = 0.0
        self._runs: SingleFlight[tuple[Health, int]] = SingleFlight()

    async def get(self, services: Services) -> tuple[Health, int]:
        if self._answer is not None and time.monotonic() < self._expires:
            return self._answer

        async def run() -> tuple[Health, int]:
            answer = await _checks(services)
            if answer[1] == 200:
                self._answer, self._expires = answer, time.monotonic() + READY_CACHE_SECONDS
            else:
                self._answer = None
            return answer

        return await self._runs.do("ready", run)


async def _checks(services: Services) -> tuple[Health, int]:
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
    return Health(status=status, checks=checks), code  # type: ignore[arg-type]


@router.get(
    "/kalimera/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "Postgres is unreachable"}},
)
async def get_health(request: Request, services: ServicesDep) -> JSONResponse:
    """Readiness: Postgres, Redis and Storage checks (at most a second old); 503 when Postgres
    (without which nothing works) is down, 200 ``degraded`` when only the cache or storage is."""
    readiness: Readiness = request.app.state.readiness
    body, code = await readiness.get(services)
    headers = {"Retry-After": "5"} if code == 503 else None
    return JSONResponse(body.model_dump(), status_code=code, headers=headers)
