"""Redis as a hint, never a dependency: every call fails open.

A timeout, a refused connection or any Redis error is logged and answered as a miss (reads) or a
no-op (writes). After a failure, Redis is skipped for ``BACKOFF_SECONDS`` so an outage costs
requests nothing, not one timeout each. An invalidation that could not reach Redis is kept and
sent before this instance's next cache read, so an entry deleted during an outage does not come
back when Redis does (within this instance's lifetime; the TTL bounds the rest).
"""

import logging
import time
from typing import cast

from redis.asyncio import Redis
from redis.credentials import CredentialProvider
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

BACKOFF_SECONDS = 2.0
CONNECT_TIMEOUT_SECONDS = 0.25


def create_redis(
    url: str,
    *,
    timeout_ms: int,
    password: str | None = None,
    credential_provider: CredentialProvider | None = None,
) -> Redis:
    """A client with short timeouts: a slow Redis is treated like a down one.
    ``credential_provider`` (Entra tokens) is asked for credentials on every new connection."""
    timeout = timeout_ms / 1000
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        # A new connection (a TLS handshake on Azure; many at once when load rises) may take
        # longer than one command; a refused connection still fails at once.
        socket_connect_timeout=max(timeout, CONNECT_TIMEOUT_SECONDS),
        retry_on_timeout=False,
        health_check_interval=0,
        password=password,
        credential_provider=credential_provider,
    )


class Cache:
    """Fail-open get/set/delete over one Redis client."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._down_until = 0.0
        self._pending_deletes: set[str] = set()

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, operation: str, exc: BaseException) -> None:
        self._down_until = time.monotonic() + BACKOFF_SECONDS
        logger.warning("redis %s failed, serving without cache: %r", operation, type(exc).__name__)

    async def get(self, key: str) -> bytes | None:
        if not self._available():
            return None
        if self._pending_deletes and not await self._flush_pending():
            return None
        try:
            return cast("bytes | None", await self.redis.get(key))  # no decode_responses: bytes
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("get", exc)
            return None

    async def set(self, key: str, value: bytes, *, ttl_seconds: int) -> None:
        if not self._available():
            return
        try:
            await self.redis.set(key, value, ex=ttl_seconds)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("set", exc)

    async def delete(self, *keys: str) -> bool:
        """Delete keys; False when Redis could not be reached (the entry may still be there)."""
        try:
            await self.redis.delete(*keys)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("delete", exc)
            self._pending_deletes.update(keys)
            return False
        return True

    async def _flush_pending(self) -> bool:
        keys = list(self._pending_deletes)
        self._pending_deletes.clear()
        return await self.delete(*keys)

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except (RedisError, OSError, TimeoutError):
            return False

    async def aclose(self) -> None:
        await self.redis.aclose()
