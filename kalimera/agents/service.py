"""What the agents domain does: each function is one unit of work, then the cache.

Reads are cache-aside over Redis, holding only the masked document (``<etag>\\n<json>``), per
tenant and agent. Every write commits to Postgres first and then deletes that entry, in the same
request; the cache is fail-open, so Redis down or slow costs a Postgres read, never a failure.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import orjson
from pydantic import ValidationError

from kalimera.agents import repository
from kalimera.agents.models import SECTION_MODELS, AgentCreate, AgentUpdate
from kalimera.agents.repository import Row
from kalimera.agents.secrets import (
    MASK,
    UndecryptableSecret,
    associated_data,
    cipher,
    mask,
    masked_secrets_redirected,
)
from kalimera.agents.sections import (
    EXTRA_SECRETS,
    KEY_OF,
    MAX_SECTION_BYTES,
    SECTIONS,
    section_name,
)
from kalimera.db import transaction
from kalimera.errors import Invalid, Misconfigured, NotFound, Stale, TooLarge, invalid_fields
from kalimera.etags import etag, parse_if_match
from kalimera.services import Services
from kalimera.singleflight import SingleFlight

logger = logging.getLogger(__name__)

NOT_FOUND = "AI Agent not found"


@dataclass(frozen=True, slots=True)
class Rendered:
    """An agent as the API answers it: the masked JSON and its ETag."""

    etag: str
    body: bytes


def cache_key(tenant_id: uuid.UUID, agent_id: uuid.UUID | str) -> str:
    """The agent's Redis key; ``agent_id`` as a UUID or as ``str`` writes one (the same key)."""
    return f"kalimera:agent:{tenant_id}:{agent_id}"


def masked_sections(configuration: dict[str, Any]) -> dict[str, Any]:
    """All thirteen sections under their snake_case keys, secrets masked, ``{}`` when unset."""
    masked = mask(configuration)
    return {key: masked.get(name, {}) for name, key in SECTIONS}


def render(row: Row) -> Rendered:
    document = {
        "id": str(row["id"]),
        "name": row["name"],
        "description": row["description"],
        "avatar": row["avatar"],
        "profile_type": row["profile_type"],
        "created_at": row["created_at"].astimezone(UTC),
        "updated_at": row["updated_at"].astimezone(UTC),
        **masked_sections(row["configuration"]),
    }
    return Rendered(etag(row["version"]), orjson.dumps(document, option=orjson.OPT_UTC_Z))


def _check_size(name: str, value: Any) -> None:
    if len(orjson.dumps(value)) > MAX_SECTION_BYTES:
        raise TooLarge(f"The {KEY_OF[name]} section is over {MAX_SECTION_BYTES // 1024} KiB")


def _sealed(
    *, services: Services, tenant_id: uuid.UUID, agent_id: uuid.UUID, sections: dict[str, Any]
) -> dict[str, Any]:
    for name, value in sections.items():
        _check_size(name, value)
    return cipher(services.settings).seal(sections, associated_data(tenant_id, agent_id))


async def _invalidate(*, services: Services, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> None:
    key = cache_key(tenant_id, agent_id)
    _loads.forget(key)
    await services.cache.delete(key)


_loads: SingleFlight[Rendered] = SingleFlight()


async def cached(
    *, services: Services, tenant_id: uuid.UUID, agent_id: uuid.UUID | str
) -> Rendered | None:
    """The masked agent as Redis holds it (one GET, no parsing), or None when it does not;
    ``agent_id`` as ``cache_key`` takes it."""
    value = await services.cache.get(cache_key(tenant_id, agent_id))
    if value is None:
        return None
    tag, _, body = value.partition(b"\n")
    return Rendered(tag.decode(), body)


async def read(*, services: Services, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> Rendered:
    """The masked agent, from Redis when it is there (returned as stored: no parsing)."""
    hit = await cached(services=services, tenant_id=tenant_id, agent_id=agent_id)
    if hit is not None:
        return hit
    key = cache_key(tenant_id, agent_id)

    async def load() -> Rendered:
        async with transaction(await services.db()) as conn:
            row = await repository.get(conn=conn, tenant_id=tenant_id, agent_id=agent_id)
        if row is None:
            raise NotFound(NOT_FOUND)
        rendered = render(row)
        if _loads.is_current(key):  # no write of this agent happened while reading it
            await services.cache.set(
                key,
                rendered.etag.encode() + b"\n" + rendered.body,
                ttl_seconds=services.settings.agent_cache_ttl_seconds,
            )
        return rendered

    return await _loads.do(key, load)


async def list_page(
    *, services: Services, tenant_id: uuid.UUID, search: str | None, page: int, limit: int
) -> bytes:
    async with transaction(await services.db()) as conn:
        found = await repository.page(
            conn=conn, tenant_id=tenant_id, search=search, limit=limit, offset=(page - 1) * limit
        )
    items = b",".join(render(row).body for row in found.rows)
    return b'{"items":[%s],"total":%d,"page":%d,"limit":%d}' % (items, found.total, page, limit)


async def create(*, services: Services, tenant_id: uuid.UUID, body: AgentCreate) -> uuid.UUID:
    agent_id = uuid.uuid4()
    sections = _sealed(
        services=services, tenant_id=tenant_id, agent_id=agent_id, sections=body.sections()
    )
    async with transaction(await services.db()) as conn:
        await repository.insert(
            conn=conn,
            tenant_id=tenant_id,
            agent_id=agent_id,
            columns=body.columns(),
            configuration=sections,
        )
    logger.info("agent created: tenant=%r agent=%r", str(tenant_id), str(agent_id))
    return agent_id


def _refuse_redirected_secrets(
    sections: dict[str, Any], stored: dict[str, Any], *, one_section: bool
) -> None:
    """``Invalid`` when a secret sent back masked would stay paired with a changed endpoint, URL or
    host (the stored key would be sent somewhere it was never sent): the client must enter it
    again. ``one_section``: the body is the section itself (its PUT), not the whole agent."""
    errors = []
    for name, value in sections.items():
        extra = EXTRA_SECRETS.get(name, frozenset())
        for path, changed in masked_secrets_redirected(value, stored.get(name), extra):
            secret = ".".join(str(p) for p in path)
            loc = ["body", *path] if one_section else ["body", KEY_OF[name], *path]
            errors.append(
                {"loc": loc, "msg": f"re-enter {secret}: the endpoint changed ({changed})"}
            )
    if errors:
        raise Invalid("; ".join(str(err["msg"]) for err in errors), errors=errors)


async def _update(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    columns: dict[str, Any],
    sections: dict[str, Any],
    if_match: str | None,
    one_section: bool = False,
) -> Row:
    version = parse_if_match(if_match)
    sealed = _sealed(services=services, tenant_id=tenant_id, agent_id=agent_id, sections=sections)
    # Only a body that sends a secret back masked needs the stored sections compared (under
    # the row's lock, so no concurrent write slips between the check and the update).
    masked = MASK.encode() in orjson.dumps(sections)
    async with transaction(await services.db()) as conn:
        if masked:
            stored = await repository.lock_configuration(
                conn=conn, tenant_id=tenant_id, agent_id=agent_id
            )
            if stored is not None:
                _refuse_redirected_secrets(sections, stored, one_section=one_section)
        row = await repository.update(
            conn=conn,
            tenant_id=tenant_id,
            agent_id=agent_id,
            columns=columns,
            sections=sealed,
            version=version,
        )
        if row is None:
            if version is not None and await repository.exists(
                conn=conn, tenant_id=tenant_id, agent_id=agent_id
            ):
                raise Stale("The agent changed since it was read (If-Match is stale)")
            raise NotFound(NOT_FOUND)
    await _invalidate(services=services, tenant_id=tenant_id, agent_id=agent_id)
    logger.info(
        "agent updated: tenant=%r agent=%r sections=%r",
        str(tenant_id),
        str(agent_id),
        sorted(sections),
    )
    return row


async def update(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    body: AgentUpdate,
    if_match: str | None = None,
) -> None:
    await _update(
        services=services,
        tenant_id=tenant_id,
        agent_id=agent_id,
        columns=body.columns(),
        sections=body.sections(),
        if_match=if_match,
    )


def validate_section(*, section: str, value: Any) -> tuple[str, Any]:
    """The section's name and its value as stored; ``NotFound`` for an unknown name,
    ``Invalid`` when the value does not fit the section's model, ``TooLarge`` when too large."""
    name = section_name(section)
    if name is None:
        raise NotFound("Invalid section name")
    try:
        stored = SECTION_MODELS[name].model_validate(value).stored()
    except ValidationError as exc:
        raise invalid_fields(exc) from None
    _check_size(name, stored)
    return name, stored


async def update_section(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    section: str,
    value: Any,
    if_match: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """Replace one section in one atomic statement; the new ETag and the whole configuration,
    masked."""
    name, stored = validate_section(section=section, value=value)
    row = await _update(
        services=services,
        tenant_id=tenant_id,
        agent_id=agent_id,
        columns={},
        sections={name: stored},
        if_match=if_match,
        one_section=True,
    )
    return etag(row["version"]), masked_sections(row["configuration"])


async def delete(*, services: Services, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> None:
    async with transaction(await services.db()) as conn:
        deleted = await repository.delete(conn=conn, tenant_id=tenant_id, agent_id=agent_id)
    if not deleted:
        raise NotFound(NOT_FOUND)
    await _invalidate(services=services, tenant_id=tenant_id, agent_id=agent_id)
    logger.info("agent deleted: tenant=%r agent=%r", str(tenant_id), str(agent_id))


async def runtime_config(
    *, services: Services, tenant_id: uuid.UUID, agent_id: uuid.UUID
) -> dict[str, Any]:
    """The stored sections under their section names, secrets decrypted (never cached)."""
    async with transaction(await services.db()) as conn:
        row = await repository.get(conn=conn, tenant_id=tenant_id, agent_id=agent_id)
    if row is None:
        raise NotFound(NOT_FOUND)
    try:
        configuration = cipher(services.settings).unseal(
            row["configuration"], associated_data(tenant_id, agent_id)
        )
    except UndecryptableSecret as exc:
        logger.error(
            "cannot decrypt agent secrets: tenant=%r agent=%r: %s",
            str(tenant_id),
            str(agent_id),
            exc,
        )
        raise Misconfigured(
            "A stored secret does not decrypt with the configured keys"
            " (keep the previous key in KALIMERA_ENCRYPTION_KEY_OLD until `kalimera secrets rotate`"
            " has run)",
        ) from None
    logger.info("runtime config exported: tenant=%r agent=%r", str(tenant_id), str(agent_id))
    return configuration


@dataclass(slots=True)
class Rotation:
    seen: int = 0
    changed: int = 0
    failed: int = 0


async def rotate_all(*, services: Services, batch: int = 200) -> Rotation:
    """Re-encrypt every secret sealed with an older key.

    Each agent is rewritten under its row lock, so a concurrent API write is never lost; an
    agent whose secrets no configured key decrypts is logged, counted and left as it is.
    """
    seal = cipher(services.settings)
    result = Rotation()
    after: tuple[uuid.UUID, uuid.UUID] | None = None
    pool = await services.db()
    while True:
        async with transaction(pool, system=True) as conn:
            keys = await repository.keys_after(conn=conn, after=after, limit=batch)
        if not keys:
            return result
        for tenant_id, agent_id in keys:
            result.seen += 1
            dirty = False
            async with transaction(pool, tenant_id=tenant_id) as conn:
                stored = await repository.lock_configuration(
                    conn=conn, tenant_id=tenant_id, agent_id=agent_id
                )
                try:
                    rotated, dirty = seal.reseal(stored or {}, associated_data(tenant_id, agent_id))
                except UndecryptableSecret as exc:
                    result.failed += 1
                    logger.error(
                        "cannot rotate agent: tenant=%r agent=%r: %s",
                        str(tenant_id),
                        str(agent_id),
                        exc,
                    )
                if dirty:
                    await repository.set_configuration(
                        conn=conn, tenant_id=tenant_id, agent_id=agent_id, configuration=rotated
                    )
            if dirty:
                result.changed += 1
                await _invalidate(services=services, tenant_id=tenant_id, agent_id=agent_id)
        after = keys[-1]
