"""Recording URLs: signed with the account key on Azurite, with a user delegation key on Azure."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

from azure.storage.blob import UserDelegationKey

from kalimera.conversations.signing import Signer


class _IdentityBlobService:
    """Stands in for an identity-based BlobServiceClient (Azure; not reachable from here)."""

    account_name = "kalimeraprod"
    url = "https://kalimeraprod.blob.core.windows.net/"
    credential = object()  # a token credential: no account key

    def __init__(self) -> None:
        self.key_requests = 0

    async def get_user_delegation_key(self, start: datetime, expiry: datetime) -> Any:
        self.key_requests += 1
        key = UserDelegationKey()
        key.signed_oid, key.signed_tid = "oid", "tid"
        key.signed_start, key.signed_expiry = (
            f"{start:%Y-%m-%dT%H:%M:%SZ}",
            f"{expiry:%Y-%m-%dT%H:%M:%SZ}",
        )
        key.signed_service, key.signed_version = "b", "2025-01-05"
        key.value = "a2FsaW1lcmE="
        return key


class _Services:
    def __init__(self, blobs: Any) -> None:
        self.blobs = blobs
        self.settings = type("S", (), {"voice_container": "kalimera-voice"})()


def test_identity_based_storage_signs_with_one_reused_user_delegation_key() -> None:
    blobs = _IdentityBlobService()
    services = _Services(blobs)

    async def sign_twice() -> list[str]:
        urls = []
        for _ in range(2):
            signer = await Signer.for_services(services)  # type: ignore[arg-type]
            urls.append(signer.url("t/a/c/000001-input.wav"))
        return urls

    urls = asyncio.run(sign_twice())
    assert blobs.key_requests == 1
    query = parse_qs(urlparse(urls[0]).query)
    assert query["sp"] == ["r"]
    assert query["skoid"] == ["oid"]
    assert "sig" in query
    start, expiry = (
        datetime.fromisoformat(query[k][0].replace("Z", "+00:00")) for k in ("st", "se")
    )
    # From the window's start less 5 minutes of clock skew, to 15 minutes after its 5 end.
    assert (expiry - start).total_seconds() == 25 * 60
    assert start.minute % 5 == 0
    assert urlparse(urls[0]).path == "/kalimera-voice/t/a/c/000001-input.wav"


def test_on_identity_based_storage_the_url_is_a_user_delegation_sas_to_create_only() -> None:
    services = _Services(_IdentityBlobService())

    async def sign() -> tuple[str, datetime]:
        signer = await Signer.for_services(services)  # type: ignore[arg-type]
        return signer.create_url("t/a/c/000001-input.wav")

    url, expires_at = asyncio.run(sign())
    query = parse_qs(urlparse(url).query)
    assert query["sp"] == ["c"]  # create: no read, write (overwrite), delete or list
    assert query["sr"] == ["b"]  # this one blob
    assert query["skoid"] == ["oid"]  # signed with the user delegation key
    assert datetime.fromisoformat(query["se"][0].replace("Z", "+00:00")) == expires_at.replace(
        microsecond=0
    )
    assert urlparse(url).path == "/kalimera-voice/t/a/c/000001-input.wav"
