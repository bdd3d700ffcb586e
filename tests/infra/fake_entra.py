"""The one fake the tests allow: Entra ID itself.

``FakeEntra`` is an azure-identity style credential (sync ``get_token`` and async
``AsyncFakeEntra``) that issues JWT-shaped access tokens with the claims the servers look at
(``oid``, ``aud``, ``iss``, ``iat``/``nbf``/``exp``), unsigned: Azurite's ``--oauth basic``
validates those claims and not the signature, our Redis ACL user and Postgres role accept the
token as a password. Every request is recorded, so tests can count refreshes."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

OBJECT_ID = "5b9a6c1e-0000-4000-8000-00000000fa4e"
TENANT_ID = "72f988bf-0000-4000-8000-000000000000"


class AccessToken(NamedTuple):
    token: str
    expires_on: int


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def jwt(scope: str, *, expires_on: int, object_id: str = OBJECT_ID, serial: int = 0) -> str:
    """The token FakeEntra issues for ``scope``; deterministic, so a test can precompute it."""
    claims = {
        "aud": scope.removesuffix("/.default").rstrip("/"),
        "iss": f"https://sts.windows.net/{TENANT_ID}/",
        "iat": expires_on - 3600,
        "nbf": expires_on - 3600,
        "exp": expires_on,
        "oid": object_id,
        "tid": TENANT_ID,
        "serial": serial,
    }
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.fake-signature"


@dataclass
class FakeEntra:
    """Tokens valid for ``lifetime`` seconds from ``epoch`` (fixed, or now when None)."""

    lifetime: int = 3600
    epoch: int | None = None
    requests: list[str] = field(default_factory=list)

    def _issue(self, scope: str) -> AccessToken:
        self.requests.append(scope)
        expires_on = (self.epoch or int(time.time())) + self.lifetime
        serial = sum(1 for s in self.requests if s == scope) - 1 if self.epoch is None else 0
        return AccessToken(jwt(scope, expires_on=expires_on, serial=serial), expires_on)

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        return self._issue(scopes[0])


class AsyncFakeEntra(FakeEntra):
    """The asyncio form, constructed like ``azure.identity.aio.DefaultAzureCredential``."""

    def __init__(
        self, *, epoch: int | None = None, lifetime: int = 3600, **credential_kwargs: Any
    ) -> None:
        super().__init__(lifetime=lifetime, epoch=epoch)
        self.credential_kwargs = credential_kwargs

    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:  # type: ignore[override]
        return self._issue(scopes[0])

    async def close(self) -> None:
        return None
