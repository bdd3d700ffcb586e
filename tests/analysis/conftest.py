"""Analysis fixtures: agents made through the API, a plan body, a second tenant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import Tenant

PLAN: dict[str, Any] = {
    "summary": {"enabled": True, "instructions": "Focus on the booking.", "max_words": 80},
    "success": {"enabled": True, "rubric": "pass_fail", "criteria": "The caller booked a table."},
    "data": {
        "enabled": True,
        "instructions": "What the booking needs.",
        "schema": {
            "type": "object",
            "properties": {
                "party_size": {"type": "integer"},
                "date": {"type": "string", "format": "date"},
                "intent": {"type": "string", "enum": ["booking", "cancel", "question"]},
            },
        },
    },
    "sentiment": {"enabled": True},
}


def create_agent(client: httpx.Client) -> str:
    response = client.post("/kalimera/ai-agent", json={"name": "Agent", "type": "inbound"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def plan_path(agent_id: str) -> str:
    return f"/kalimera/ai-agent/{agent_id}/analysis-plan"


@pytest.fixture
def agent(tenant: Tenant) -> str:
    return create_agent(tenant.client)


@pytest.fixture
def other_tenant(new_tenant: Callable[..., Tenant]) -> Tenant:
    return new_tenant()
