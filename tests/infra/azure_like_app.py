"""Run in a fresh interpreter by test_runs_on_infra_settings.py, with only the settings infra/
gives the Function App (local endpoints substituted) in the environment.

Entra is faked by replacing azure-identity's DefaultAzureCredential (the class our code builds)
with AsyncFakeEntra; everything else is the real code against the local services. Prints one
JSON line: the health answer and the token scopes that were asked for."""

import asyncio
import functools
import json
import os
import sys

import azure.identity.aio

from tests.infra.fake_entra import AsyncFakeEntra

made: list[AsyncFakeEntra] = []


def fake_default_credential(**kwargs: object) -> AsyncFakeEntra:
    credential = AsyncFakeEntra(epoch=int(os.environ["FAKE_ENTRA_EPOCH"]), **kwargs)
    made.append(credential)
    return credential


azure.identity.aio.DefaultAzureCredential = functools.partial(fake_default_credential)


async def main() -> dict[str, object]:
    import httpx

    import function_app  # what the Functions worker imports first: must succeed as is
    from kalimera.app import create_app
    from kalimera.storage import ensure_containers

    assert function_app.app is not None
    app = create_app()
    async with app.router.lifespan_context(app):
        services = app.state.services
        # On Azure infra/ creates these; here the fresh Azurite needs them (with the token).
        await ensure_containers(services.blobs, services.tables, services.settings)
        transport = httpx.ASGITransport(app=app)
        # What API Management adds (infra/apim/policy.xml) once the gateway check is wired in.
        headers = {"X-Kalimera-Gateway": os.environ.get("KALIMERA_GATEWAY_SECRET", "")}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://app", headers=headers
        ) as client:
            health = await client.get("/kalimera/health")
    return {
        "status": health.status_code,
        "health": health.json(),
        "scopes": sorted({scope for c in made for scope in c.requests}),
        "client_ids": sorted(
            {str(c.credential_kwargs.get("managed_identity_client_id")) for c in made}
        ),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
    sys.stdout.flush()
