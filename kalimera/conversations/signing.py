"""Signed URLs for recordings: read-only for the history, create-only for the upload URL."""

from __future__ import annotations

import weakref
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

if TYPE_CHECKING:
    from azure.storage.blob.aio import BlobServiceClient

    from kalimera.services import Services

SAS_LIFETIME = timedelta(minutes=15)
CLOCK_SKEW = timedelta(minutes=5)
DELEGATION_KEY_LIFETIME = timedelta(hours=2)


class Signer:
    """Signed URLs for recordings, valid ``SAS_LIFETIME``: with the account key where
    the connection string has one (Azurite, key-based accounts), else with a user delegation key
    (identity-based connections on Azure), which is fetched once and reused while it is valid."""

    # One user delegation key per blob client (i.e. per process), reused while it is valid.
    _delegation: ClassVar[weakref.WeakKeyDictionary[Any, tuple[Any, datetime]]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(
        self,
        blobs: BlobServiceClient,
        container: str,
        *,
        account_key: str | None,
        delegation_key: Any = None,
    ) -> None:
        self.blobs = blobs
        self.container = container
        self.account_key = account_key
        self.delegation_key = delegation_key

    @classmethod
    async def for_services(cls, services: Services) -> Signer:
        blobs = services.blobs
        container = services.settings.voice_container
        account_key = getattr(blobs.credential, "account_key", None)
        if account_key:
            return cls(blobs, container, account_key=account_key)
        now = datetime.now(UTC)
        cached = cls._delegation.get(blobs)
        if cached is None or cached[1] - now < SAS_LIFETIME + CLOCK_SKEW:
            expiry = now + DELEGATION_KEY_LIFETIME
            key = await blobs.get_user_delegation_key(now - CLOCK_SKEW, expiry)
            cached = (key, expiry)
            cls._delegation[blobs] = cached
        return cls(blobs, container, account_key=None, delegation_key=cached[0])

    def url(self, blob_name: str) -> str:
        """A read-only download URL."""
        from azure.storage.blob import BlobSasPermissions

        return self._signed(blob_name, BlobSasPermissions(read=True))[0]

    def create_url(self, blob_name: str) -> tuple[str, datetime]:
        """A URL that can create this blob and do nothing else (no overwrite, read, list or
        delete), and when it expires."""
        from azure.storage.blob import BlobSasPermissions

        return self._signed(blob_name, BlobSasPermissions(create=True))

    def _signed(self, blob_name: str, permission: Any) -> tuple[str, datetime]:
        from azure.storage.blob import generate_blob_sas

        now = datetime.now(UTC)
        expiry = now + SAS_LIFETIME
        token = generate_blob_sas(
            account_name=str(self.blobs.account_name),
            container_name=self.container,
            blob_name=blob_name,
            account_key=self.account_key,
            user_delegation_key=self.delegation_key,
            permission=permission,
            start=now - CLOCK_SKEW,
            expiry=expiry,
        )
        base = self.blobs.url.rstrip("/")
        return f"{base}/{self.container}/{quote(blob_name)}?{token}", expiry
