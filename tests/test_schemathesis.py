"""Generated requests over the whole OpenAPI document: no 5xx, nothing outside the documented
schema. A bounded run in ``make test``; ``make fuzz`` sets KALIMERA_FUZZ_EXAMPLES for a long one."""

import base64
import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from kalimera.app import create_app
from kalimera.settings import Settings
from tests.conftest import Server, Tenant

EXAMPLES = int(os.environ.get("KALIMERA_FUZZ_EXAMPLES", "25"))

# The document only: building the app connects to nothing.
_document = create_app(
    Settings(
        KALIMERA_ENV="development", KALIMERA_ENCRYPTION_KEY=base64.b64encode(b"0" * 32).decode()
    )
).openapi()
schema = schemathesis.openapi.from_dict(_document)


@pytest.fixture(scope="module")
def fuzz_tenant(server: Server) -> Tenant:
    return Tenant(server)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_generated_requests_never_fail_the_server(
    case: Any, fuzz_tenant: Tenant, server: Server
) -> None:
    case.call_and_validate(
        base_url=server.url, headers={"Authorization": f"Bearer {fuzz_tenant.token}"}
    )
