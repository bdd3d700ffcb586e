"""Entra ID access tokens as Postgres passwords, refreshed before they expire.

Azure Database for PostgreSQL accepts an Entra access token for the
``https://ossrdbms-aad.database.windows.net/.default`` scope as the password. Tokens live about an
hour; each new pool connection asks for one, and a token is reused until five minutes before it
expires, so connections opened late in a token's life never carry an expired one.
"""

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

POSTGRES_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"
REFRESH_MARGIN_SECONDS = 300


def postgres_password(credential: Any) -> Callable[[], Awaitable[str]]:
    """An async callable returning a valid token; works with sync and async credentials."""
    current: dict[str, Any] = {"token": "", "expires_on": 0}

    async def password() -> str:
        if current["expires_on"] - REFRESH_MARGIN_SECONDS <= time.time():
            token = credential.get_token(POSTGRES_SCOPE)
            if inspect.isawaitable(token):
                token = await token
            current["token"], current["expires_on"] = token.token, token.expires_on
        return str(current["token"])

    return password
