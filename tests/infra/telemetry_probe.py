"""Run in a fresh interpreter by test_telemetry.py: telemetry configured (spans also kept in
memory), the real app on the local stack, Entra faked. Prints one JSON line: the spans (name,
kind, attributes), the log lines, the response headers."""

import asyncio
import io
import json
import logging
import os
import uuid

import azure.identity

from tests.infra.fake_entra import FakeEntra

# The exporter's identity: the one fake allowed. Nothing is sent (the endpoint is a closed port).
azure.identity.DefaultAzureCredential = lambda **kwargs: FakeEntra()  # type: ignore[assignment,misc]


async def main() -> dict[str, object]:
    import httpx
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from kalimera import telemetry
    from kalimera.settings import get_settings

    spans = InMemorySpanExporter()
    assert telemetry.configure(get_settings(), span_processors=[SimpleSpanProcessor(spans)])
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(request_id)s %(name)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)

    from kalimera.app import create_app
    from kalimera.auth import create_token
    from kalimera.db import transaction

    app = create_app()
    async with app.router.lifespan_context(app):
        services = app.state.services
        async with transaction(await services.db(), system=True) as conn:
            _, token = await create_token(
                conn=conn, tenant_id=uuid.uuid4(), name="telemetry", scopes=()
            )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            health = await client.get(
                "/kalimera/health", headers={"Authorization": f"Bearer {token}"}
            )
            missing = await client.get(
                "/kalimera/no-such-route", headers={"Authorization": f"Bearer {token}"}
            )
        await services.cache.set("kalimera:telemetry-probe", token.encode(), ttl_seconds=5)
        with telemetry.operation("ingest_recording", blob="kalimera-voice/x.wav"):
            logging.getLogger("kalimera.conversations").info("ingesting one recording")
    return {
        "token": token,
        "health_status": health.status_code,
        "missing_status": missing.status_code,
        "request_id": health.headers.get("x-request-id"),
        "log": log.getvalue(),
        "spans": [
            {"name": s.name, "kind": s.kind.name, "attributes": dict(s.attributes or {})}
            for s in spans.get_finished_spans()
        ],
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), default=str), flush=True)
    os._exit(0)  # skip the exporter's shutdown flush to a closed port
