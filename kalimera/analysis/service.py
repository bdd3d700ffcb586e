"""What the analysis domain does with plans: read the current one, write a new version, list
them. Each function is one transaction; a write takes the agent's row lock, so concurrent writes
to one agent's plan make consecutive versions, never the same one twice."""

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from kalimera.analysis import repository
from kalimera.analysis.models import (
    DEFAULT_PLAN,
    AnalysisPlan,
    AnalysisPlanPage,
    AnalysisPlanRead,
    schema_errors,
)
from kalimera.db import transaction
from kalimera.errors import NOT_VALID, Conflict, Invalid, NotFound, Stale
from kalimera.etags import etag, parse_if_match
from kalimera.services import Services

logger = logging.getLogger(__name__)

NOT_FOUND = "AI Agent not found"
SCHEMA_LOC = ("body", "data", "schema")


@dataclass(frozen=True, slots=True)
class Versioned:
    """A plan as the API answers it, and its ETag."""

    etag: str
    plan: AnalysisPlanRead


def _read(row: dict[str, Any]) -> AnalysisPlanRead:
    return AnalysisPlanRead.model_validate(
        {**row["plan"], "version": row["version"], "created_at": row["created_at"]}
    )


def _default() -> AnalysisPlanRead:
    return AnalysisPlanRead.model_validate(
        {**DEFAULT_PLAN.stored(), "version": 0, "created_at": None}
    )


def validate(plan: AnalysisPlan) -> dict[str, Any]:
    """The plan as stored; ``Invalid`` naming every fault of its data schema (the rest of the
    plan its model has checked)."""
    stored = plan.stored()
    schema = stored["data"]["schema"]
    if schema is not None:
        faults = [{"loc": [*SCHEMA_LOC, *loc], "msg": msg} for loc, msg in schema_errors(schema)]
        if faults:
            raise Invalid(NOT_VALID, errors=faults)
    return stored


async def current(*, services: Services, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> Versioned:
    """The agent's current plan (the default plan, version 0, until one is written)."""
    async with transaction(await services.db()) as conn:
        row = await repository.current(conn=conn, tenant_id=tenant_id, agent_id=agent_id)
    if row is None:
        raise NotFound(NOT_FOUND)
    plan = _default() if row["version"] is None else _read(row)
    return Versioned(etag(plan.version), plan)


async def replace(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    plan: AnalysisPlan,
    if_match: str | None = None,
) -> Versioned:
    """Write ``plan`` as the agent's next version; ``Stale`` when ``if_match`` names a version
    that is no longer the current one."""
    stored = validate(plan)
    expected = parse_if_match(if_match)
    async with transaction(await services.db()) as conn:
        if not await repository.lock_agent(conn=conn, tenant_id=tenant_id, agent_id=agent_id):
            raise NotFound(NOT_FOUND)
        latest = await repository.latest_version(conn=conn, tenant_id=tenant_id, agent_id=agent_id)
        if expected is not None and expected != latest:
            raise Stale("The analysis plan changed since it was read (If-Match is stale)")
        try:
            row = await repository.insert(
                conn=conn, tenant_id=tenant_id, agent_id=agent_id, version=latest + 1, plan=stored
            )
        except psycopg.errors.UniqueViolation:
            # Not reached while writers take the agent's lock; the key is the last guard.
            raise Conflict("Another write made this plan version; read it and retry") from None
    logger.info(
        "analysis plan written: tenant=%r agent=%r version=%r",
        str(tenant_id),
        str(agent_id),
        row["version"],
    )
    written = _read(row)
    return Versioned(etag(written.version), written)


async def versions(
    *, services: Services, tenant_id: uuid.UUID, agent_id: uuid.UUID, page: int, limit: int
) -> AnalysisPlanPage:
    """The agent's written plan versions, newest first (the default plan, never written, is not
    one of them)."""
    async with transaction(await services.db()) as conn:
        if not await repository.agent_exists(conn=conn, tenant_id=tenant_id, agent_id=agent_id):
            raise NotFound(NOT_FOUND)
        found = await repository.list_page(
            conn=conn,
            tenant_id=tenant_id,
            agent_id=agent_id,
            limit=limit,
            offset=(page - 1) * limit,
        )
    return AnalysisPlanPage(
        items=[_read(row) for row in found.rows], total=found.total, page=page, limit=limit
    )
