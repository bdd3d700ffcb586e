"""Signed URLs for recordings: read-only for the turns and the conversation's recordings,
create-only for the upload URL."""

from __future__ import annotations

import weakref
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, unquote, urlsplit

if TYPE_CHECKING:
    from azure.storage.blob.aio import BlobServiceClient

    from kalimera.services import Services

SAS_LIFETIME = timedelta(minutes=15)
CLOCK_SKEW = timedelta(minutes=5)
DELEGATION_KEY_LIFETIME = timedelta(hours=2)
# Read URLs are signed as of the start of a window, so that every read within it hands out the
# same URLs (a conversation's ETag names the window: ``If-None-Match`` answers 304 only while
# the client's URLs are those of the current window); each stays valid SAS_LIFETIME at least.
WINDOW = timedelta(minutes=5)


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
        now: datetime | None = None,
    ) -> None:
        self.blobs = blobs
        self.container = container
        self.account_key = account_key
        self.delegation_key = delegation_key
        seconds = WINDOW.total_seconds()
        self.window = int((now or datetime.now(UTC)).timestamp() // seconds)
        self.window_start = datetime.fromtimestamp(self.window * seconds, UTC)

    @classmethod
    async def for_services(cls, services: Services) -> Signer:
        blobs = services.blobs
        container = services.settings.voice_container
        account_key = getattr(blobs.credential, "account_key", None)
        if account_key:
            return cls(blobs, container, account_key=account_key)
        now = datetime.now(UTC)
        cached = cls._delegation.get(blobs)
        # The key covers every URL signed with it: from a window's start, less the skew, to
        # its end plus the lifetime.
        if cached is None or cached[1] - now < WINDOW + SAS_LIFETIME + CLOCK_SKEW:
            expiry = now + DELEGATION_KEY_LIFETIME
            key = await blobs.get_user_delegation_key(now - WINDOW - CLOCK_SKEW, expiry)
            cached = (key, expiry)
            cls._delegation[blobs] = cached
        return cls(blobs, container, account_key=None, delegation_key=cached[0])

    def url(self, blob_name: str) -> str:
        """A read-only download URL, the same for every read in this window."""
        from azure.storage.blob import BlobSasPermissions

        permission = BlobSasPermissions(read=True)
        return self._signed(blob_name, permission, self.window_start, WINDOW + SAS_LIFETIME)[0]

    def stored_url(self, url: str | None) -> str | None:
        """A read-only download URL for a recording the conversation row names by its container
        URL (``input_file_url``, ``output_file_url``: the account's address when it was
        ingested); None when there is none or it is not in the recordings container."""
        if url is None:
            return None
        path = urlsplit(url).path
        marker = f"/{self.container}/"
        at = path.find(marker)
        if at < 0 or at + len(marker) == len(path):
            return None
        return self.url(unquote(path[at + len(marker) :]))

    def create_url(self, blob_name: str) -> tuple[str, datetime]:
        """A URL that can create this blob and do nothing else (no overwrite, read, list or
        delete), and when it expires."""
        from azure.storage.blob import BlobSasPermissions

        return self._signed(
            blob_name, BlobSasPermissions(create=True), datetime.now(UTC), SAS_LIFETIME
        )

    def _signed(
        self, blob_name: str, permission: Any, now: datetime, lifetime: timedelta
    ) -> tuple[str, datetime]:
        from azure.storage.blob import generate_blob_sas

        expiry = now + lifetime
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
