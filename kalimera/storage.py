"""Blob, Table and Queue storage clients, for Azurite and for Azure alike.

``KALIMERA_STORAGE`` is a connection string (Azurite, or an account key where one is allowed);
on Azure the identity-based form ``KALIMERA_STORAGE__blobServiceUri`` (+ ``__tableServiceUri``,
``__queueServiceUri``, ``__clientId``) is used with ``DefaultAzureCredential``, the same settings
the blob and queue triggers' ``connection`` reads. The SDKs are imported here, lazily, to keep
the cold start short.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from kalimera.settings import Settings

if TYPE_CHECKING:
    from azure.data.tables.aio import TableServiceClient
    from azure.storage.blob.aio import BlobServiceClient
    from azure.storage.queue.aio import QueueClient


def credential(settings: Settings) -> Any:
    """The managed identity (or developer login) used for identity-based connections."""
    from azure.identity.aio import DefaultAzureCredential

    client_id = settings.storage_client_id or settings.managed_identity_client_id
    return DefaultAzureCredential(managed_identity_client_id=client_id)


# The queue the analysis requests travel on (the relay in kalimera/outbox.py sends, the queue
# trigger ``analyse_conversation`` receives) and where Functions moves a message that failed
# maxDequeueCount times (host.json); infra/ creates both.
ANALYSIS_QUEUE = "kalimera-analysis"
ANALYSIS_POISON_QUEUE = "kalimera-analysis-poison"
# The webhook deliveries' queue (kalimera/outbox.py sends, ``deliver_webhook`` consumes).
WEBHOOKS_QUEUE = "kalimera-webhooks"
WEBHOOKS_POISON_QUEUE = "kalimera-webhooks-poison"

# The SDKs' default retries back off from 15 s, so an outage would hold a request for a minute;
# two quick retries then an error (503 at the API, a host retry for the trigger) serve better.
CONNECTION_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 30
RETRIES = 2


def _client_options() -> dict[str, Any]:
    return {
        "connection_timeout": CONNECTION_TIMEOUT_SECONDS,
        "read_timeout": READ_TIMEOUT_SECONDS,
        # Not the environment's proxies and netrc: with them aiohttp makes two trips to the
        # default executor on every request (netrc, then the proxy lookup), which cost the
        # ingestion a fifth of its throughput (bench/ingest.py: 35 -> 45 recordings/s). The
        # app reaches Storage directly (Azurite, or Azure from inside Azure).
        "use_env_settings": False,
    }


def blob_service(settings: Settings, token_credential: Any = None) -> BlobServiceClient:
    from azure.storage.blob.aio import BlobServiceClient, LinearRetry

    options = {
        **_client_options(),
        # The SDK annotates these as int; it only adds and sleeps on them, so seconds as floats.
        "retry_policy": LinearRetry(
            backoff=0.3,  # type: ignore[arg-type]
            random_jitter_range=0.2,  # type: ignore[arg-type]
            retry_total=RETRIES,
        ),
    }
    if settings.storage_connection_string is not None:
        return BlobServiceClient.from_connection_string(
            settings.storage_connection_string.get_secret_value(), **options
        )
    return BlobServiceClient(
        settings.storage_blob_uri or "",
        credential=token_credential or credential(settings),
        **options,
    )


def table_service(settings: Settings, token_credential: Any = None) -> TableServiceClient:
    from azure.data.tables.aio import TableServiceClient

    options = {**_client_options(), "retry_total": RETRIES, "retry_backoff_factor": 0.2}
    if settings.storage_connection_string is not None:
        return TableServiceClient.from_connection_string(
            settings.storage_connection_string.get_secret_value(), **options
        )
    return TableServiceClient(
        settings.table_service_uri or "",
        credential=token_credential or credential(settings),
        **options,
    )


def queue_client(settings: Settings, name: str, token_credential: Any = None) -> QueueClient:
    """A client of one queue. Messages are base64 text, as the Functions queue trigger reads
    them by default (``host.json`` keeps ``messageEncoding`` at base64)."""
    from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy

    # The async retry policy the package exports nowhere public (its default backs off from 15 s).
    from azure.storage.queue._shared.policies_async import LinearRetry
    from azure.storage.queue.aio import QueueClient

    options = {
        **_client_options(),
        "retry_policy": LinearRetry(
            backoff=0.3,  # type: ignore[arg-type]
            random_jitter_range=0.2,  # type: ignore[arg-type]
            retry_total=RETRIES,
        ),
        "message_encode_policy": TextBase64EncodePolicy(),
        "message_decode_policy": TextBase64DecodePolicy(),
    }
    if settings.storage_connection_string is not None:
        return QueueClient.from_connection_string(
            settings.storage_connection_string.get_secret_value(), name, **options
        )
    return QueueClient(
        settings.queue_service_uri or "",
        name,
        credential=token_credential or credential(settings),
        **options,
    )


async def ensure_containers(
    blobs: BlobServiceClient, tables: TableServiceClient, settings: Settings
) -> None:
    """Create the recordings container and the turns table when missing (local stacks; on Azure
    ``infra/`` creates them and this is a no-op)."""
    from azure.core.exceptions import ResourceExistsError

    with contextlib.suppress(ResourceExistsError):
        await blobs.create_container(settings.voice_container)
    await tables.create_table_if_not_exists(settings.turns_table)
