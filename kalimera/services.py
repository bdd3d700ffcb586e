"""The registry of clients (pool, cache, storage), shared by the HTTP app and the triggers.

Nothing connects when it is built: the pool opens in the background, Redis and Storage connect
on first use, so ``import function_app`` and startup work with every service down.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any

from kalimera import storage
from kalimera.cache import Cache, create_redis
from kalimera.db import Pool, create_pool, transaction_pooling
from kalimera.settings import Settings, get_settings

if TYPE_CHECKING:
    import httpx
    from azure.data.tables.aio import TableClient, TableServiceClient
    from azure.storage.blob.aio import BlobServiceClient, ContainerClient
    from azure.storage.queue.aio import QueueClient

    from kalimera.llm import ChatModel

logger = logging.getLogger(__name__)


class Services:
    """Every long-lived client of one process (and one event loop)."""

    def __init__(self, settings: Settings, *, credential: Any = None) -> None:
        self.settings = settings
        self._credential = credential
        self._pool_opened = False

    @cached_property
    def credential(self) -> Any:
        """The Entra credential for identity-based connections (only built when one is used)."""
        return self._credential or storage.credential(self.settings)

    @cached_property
    def pool(self) -> Pool:
        from kalimera.entra import postgres_password

        s = self.settings
        assert s.database_url is not None
        password = postgres_password(self.credential) if s.db_entra_auth else None
        url = s.database_url.get_secret_value()
        return create_pool(
            url,
            min_size=s.db_pool_min,
            max_size=s.db_pool_max,
            timeout=s.db_timeout_seconds,
            statement_timeout_ms=s.db_statement_timeout_ms,
            password=password,
            role=s.db_app_role,
            transaction_pooling=transaction_pooling(url, s.db_transaction_pooling),
        )

    async def db(self) -> Pool:
        """The pool, opened on first use without waiting for Postgres to answer."""
        if not self._pool_opened:
            self._pool_opened = True
            await self.pool.open(wait=False)
        return self.pool

    @cached_property
    def cache(self) -> Cache:
        from kalimera.entra import RedisEntraCredentials

        s = self.settings
        assert s.redis_url is not None
        provider = RedisEntraCredentials(self.credential) if s.redis_entra_auth else None
        return Cache(
            create_redis(
                s.redis_url.get_secret_value(),
                timeout_ms=s.redis_timeout_ms,
                credential_provider=provider,
            )
        )

    @cached_property
    def blobs(self) -> BlobServiceClient:
        cred = None if self.settings.storage_connection_string else self.credential
        return storage.blob_service(self.settings, cred)

    @cached_property
    def tables(self) -> TableServiceClient:
        cred = None if self.settings.storage_connection_string else self.credential
        return storage.table_service(self.settings, cred)

    # The recordings container and the turns table, built once like the pool: each client costs
    # a few hundred microseconds to build, which adds up at tens of recordings a second. They
    # share their service client's transport, so closing that closes them.
    @cached_property
    def recordings(self) -> ContainerClient:
        return self.blobs.get_container_client(self.settings.voice_container)

    @cached_property
    def turns(self) -> TableClient:
        return self.tables.get_table_client(self.settings.turns_table)

    # The analysis queue and its poison queue (kalimera.outbox, the dev runner), built once.
    @cached_property
    def analysis_queue(self) -> QueueClient:
        cred = None if self.settings.storage_connection_string else self.credential
        return storage.queue_client(self.settings, storage.ANALYSIS_QUEUE, cred)

    @cached_property
    def analysis_poison_queue(self) -> QueueClient:
        cred = None if self.settings.storage_connection_string else self.credential
        return storage.queue_client(self.settings, storage.ANALYSIS_POISON_QUEUE, cred)

    @cached_property
    def webhooks_queue(self) -> QueueClient:
        cred = None if self.settings.storage_connection_string else self.credential
        return storage.queue_client(self.settings, storage.WEBHOOKS_QUEUE, cred)

    @cached_property
    def webhooks_poison_queue(self) -> QueueClient:
        cred = None if self.settings.storage_connection_string else self.credential
        return storage.queue_client(self.settings, storage.WEBHOOKS_POISON_QUEUE, cred)

    @cached_property
    def http_clients(self) -> dict[str, httpx.AsyncClient]:
        """Outgoing HTTP clients by host (the webhook deliveries'), closed with the rest."""
        return {}

    @cached_property
    def llm(self) -> ChatModel | None:
        """The configured Chat Completions model (the post-call analysis asks it); None when none
        is configured. Azure OpenAI uses the Entra credential, so it is only built then."""
        from kalimera.llm import build_chat_model

        s = self.settings
        entra = s.llm_endpoint and s.llm_api_key is None
        return build_chat_model(s, credential=self.credential if entra else None)

    def warm(self) -> None:
        """Build the storage clients now: importing the SDKs takes a few hundred milliseconds,
        which must not land on the event loop in the middle of serving requests. The model
        client's import (the ``openai`` package, over a second) runs in a thread instead, so
        startup does not wait for it either; ``llm`` then finds it imported."""
        _ = self.recordings, self.turns, self.cache
        if self.settings.llm_configured:
            threading.Thread(
                target=importlib.import_module,
                args=("kalimera.llm",),
                name="import-model-client",
                daemon=True,
            ).start()

    async def aclose(self) -> None:
        closers = []
        if self._pool_opened:
            closers.append(self.pool.close())
        queues = (
            "analysis_queue",
            "analysis_poison_queue",
            "webhooks_queue",
            "webhooks_poison_queue",
        )
        for name in ("cache", "blobs", "tables", *queues):
            if name in self.__dict__:
                closers.append(
                    self.__dict__[name].close() if name != "cache" else self.cache.aclose()
                )
        closers.extend(client.aclose() for client in self.__dict__.get("http_clients", {}).values())
        if self.__dict__.get("llm") is not None:
            closers.append(self.__dict__["llm"].aclose())
        results = await asyncio.gather(*closers, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                logger.warning("closing a client failed: %r", type(result).__name__)


_shared: Services | None = None


def shared() -> Services:
    """The process-wide registry the trigger functions use (one per Functions worker)."""
    global _shared
    if _shared is None:
        _shared = Services(get_settings())
    return _shared
