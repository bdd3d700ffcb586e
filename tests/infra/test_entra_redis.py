"""Redis with an Entra access token: the identity's object id as the user, the token as the
password, asked for on each new connection (Azure Managed Redis checks it at AUTH)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from redis import Redis

from kalimera.cache import Cache, create_redis
from kalimera.entra import REDIS_SCOPE, REFRESH_MARGIN_SECONDS, RedisEntraCredentials
from tests.infra.fake_entra import OBJECT_ID, FakeEntra, jwt

EPOCH = int(time.time())


@pytest.fixture
def acl_user(redis_url: str) -> Iterator[Redis]:
    admin = Redis.from_url(redis_url)
    try:
        yield admin
    finally:
        admin.execute_command("ACL", "DELUSER", OBJECT_ID)
        admin.close()


def allow(admin: Redis, password: str) -> None:
    admin.execute_command(
        "ACL", "SETUSER", OBJECT_ID, "reset", "on", f">{password}", "~*", "&*", "+@all"
    )


async def pings(redis_url: str, entra: FakeEntra, connections: int) -> list[bool]:
    """``connections`` concurrent pings (so as many connections) through the app's Cache."""
    cache = Cache(
        create_redis(redis_url, timeout_ms=1000, credential_provider=RedisEntraCredentials(entra))
    )
    try:
        return list(await asyncio.gather(*(cache.ping() for _ in range(connections))))
    finally:
        await cache.aclose()


def test_the_cache_authenticates_with_the_object_id_and_the_token(
    redis_url: str, acl_user: Redis
) -> None:
    allow(acl_user, jwt(REDIS_SCOPE, expires_on=EPOCH + 3600))
    entra = FakeEntra(epoch=EPOCH)
    assert asyncio.run(pings(redis_url, entra, connections=3)) == [True] * 3
    assert entra.requests == [REDIS_SCOPE]  # one fresh token serves every new connection


def test_a_token_near_expiry_is_replaced_on_each_new_connection(
    redis_url: str, acl_user: Redis
) -> None:
    lifetime = REFRESH_MARGIN_SECONDS - 60
    allow(acl_user, jwt(REDIS_SCOPE, expires_on=EPOCH + lifetime))
    entra = FakeEntra(epoch=EPOCH, lifetime=lifetime)
    assert asyncio.run(pings(redis_url, entra, connections=3)) == [True] * 3
    assert entra.requests == [REDIS_SCOPE] * 3


def test_another_token_is_refused_and_the_cache_fails_open(redis_url: str, acl_user: Redis) -> None:
    allow(acl_user, "not-the-token")
    assert asyncio.run(pings(redis_url, FakeEntra(epoch=EPOCH), connections=1)) == [False]
