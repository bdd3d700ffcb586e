"""Generated requests over the whole OpenAPI document: no 5xx, nothing outside the documented
schema. A bounded run in ``make test``; ``make fuzz`` sets KALIMERA_FUZZ_EXAMPLES for a long one."""

import base64
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from kalimera.app import create_app
from kalimera.settings import Settings
from tests.conftest import Server, Tenant

# The bar (quality-bars.md): no 5xx, and every response as documented (status, content type,
# headers, body schema). Not checked here: whether schemathesis' idea of "valid" and "invalid"
# input matches ours: a phone number or an email can fit the JSON Schema and still be refused,
# unknown query parameters are ignored (as most HTTP APIs do), and every case carries a valid
# token on purpose (401/403 have their own tests).
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]
EXAMPLES = int(os.environ.get("KALIMERA_FUZZ_EXAMPLES", "25"))

# The document only: building the app connects to nothing.
_document = create_app(
    Settings(
        KALIMERA_ENV="development", KALIMERA_ENCRYPTION_KEY=base64.b64encode(b"0" * 32).decode()
    )
).openapi()
schema = schemathesis.openapi.from_dict(_document)


SENT: list[int] = []


@pytest.fixture(scope="module")
def fuzz_tenant(server: Server) -> Iterator[Tenant]:
    yield Tenant(server)
    print(f"\nschemathesis: {len(SENT)} generated requests, statuses {sorted(set(SENT))}")


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
    response = case.call_and_validate(
        base_url=server.url,
        headers={"Authorization": f"Bearer {fuzz_tenant.token}"},
        checks=CHECKS,
    )
    SENT.append(response.status_code)
