"""The analysis queue's endpoint for an identity-based connection: ``KALIMERA_STORAGE__
queueServiceUri`` as the queue trigger reads it, else derived from the blob endpoint."""

from __future__ import annotations

from kalimera.settings import load_settings

DEV = {"KALIMERA_ENV": "development", "KALIMERA_STORAGE": ""}
BLOB = "https://kalimerastg.blob.core.windows.net/"


def test_the_queue_endpoint_is_derived_from_the_blob_one() -> None:
    settings = load_settings(**DEV, KALIMERA_STORAGE__blobServiceUri=BLOB)
    assert settings.queue_service_uri == "https://kalimerastg.queue.core.windows.net/"


def test_a_queue_endpoint_given_wins() -> None:
    queue = "https://kalimeraq.queue.core.windows.net/"
    settings = load_settings(
        **DEV, KALIMERA_STORAGE__blobServiceUri=BLOB, KALIMERA_STORAGE__queueServiceUri=queue
    )
    assert settings.queue_service_uri == queue


def test_a_connection_string_needs_no_endpoint() -> None:
    assert load_settings(**DEV).queue_service_uri is None
