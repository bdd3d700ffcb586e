"""Entra ID access tokens as Postgres and Redis passwords, refreshed before they expire.

Azure Database for PostgreSQL accepts an Entra access token for the
``https://ossrdbms-aad.database.windows.net/.default`` scope as the password; Azure Managed Redis
accepts one for ``https://redis.azure.com/.default`` with the identity's object id as the user.
Tokens live about an hour and are checked only when a connection authenticates, so each new
connection asks for one; a token is reused until five minutes before it expires, so connections
opened late in a token's life never carry an expired one. The credential is any azure-identity
credential (sync or async): ``DefaultAzureCredential`` on Azure, the developer's login locally.
"""

from __future__ import annotations

import base64
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.credentials import CredentialProvider

POSTGRES_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"
REDIS_SCOPE = "https://redis.azure.com/.default"
REFRESH_MARGIN_SECONDS = 300


def cached_token(credential: Any, scope: str) -> Callable[[], Awaitable[str]]:
    """An async callable returning a token for ``scope`` that is valid for five more minutes."""
    current: dict[str, Any] = {"token": "", "expires_on": 0}

    async def token() -> str:
        if current["expires_on"] - REFRESH_MARGIN_SECONDS <= time.time():
            fresh = credential.get_token(scope)
            if inspect.isawaitable(fresh):
                fresh = await fresh
            current["token"], current["expires_on"] = fresh.token, fresh.expires_on
        return str(current["token"])

    return token


def postgres_password(credential: Any) -> Callable[[], Awaitable[str]]:
    """The pool's password callable: a fresh-enough token on every new connection."""
    return cached_token(credential, POSTGRES_SCOPE)


def token_object_id(token: str) -> str:
    """The ``oid`` claim of an access token (the Redis user name). Not verified: the server does."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims["oid"])
    except (IndexError, ValueError, KeyError, TypeError):
        msg = "the Entra access token has no readable oid claim"
        raise ValueError(msg) from None


class RedisEntraCredentials(CredentialProvider):
    """redis-py asks this for (user, password) on every new connection: (oid, token)."""

    def __init__(self, credential: Any) -> None:
        self._token = cached_token(credential, REDIS_SCOPE)

    def get_credentials(self) -> tuple[str, str]:
        msg = "RedisEntraCredentials serves the asyncio client only"
        raise NotImplementedError(msg)

    async def get_credentials_async(self) -> tuple[str, str]:
        token = await self._token()
        return token_object_id(token), token
