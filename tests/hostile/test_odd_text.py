"""Odd text (quality-bars.md): lone UTF-16 surrogates, NUL bytes, 1 MB strings, RTL and
combining marks in every text field of agents, contacts and conversations: a 4xx naming the
field, or stored and returned as sent; never a 5xx.

Bodies are written with ``json.dumps`` (ASCII escapes), as a client that sends ``\\ud800`` does:
httpx's own encoder would refuse a lone surrogate before it left the test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.agents.conftest import create
from tests.conftest import Tenant

ODD: dict[str, str] = {
    "lone high surrogate": "before \ud800 after",
    "lone low surrogate": "\udc00",
    "NUL": "a\x00b",
    "1 MB": "x" * 1_000_000,
    "RTL and combining marks": "\u202eمرحبا\u200f שָׁלוֹם Zalgo\u0301\u0317\u0334 e\u0301",
}


@dataclass(frozen=True)
class Field:
    """A text field: where it is written, the rest of a valid body, and how to read it back."""

    domain: str
    name: str
    write: Callable[[Tenant, dict[str, Any]], httpx.Response]
    body: Callable[[str], dict[str, Any]]
    read: Callable[[Tenant, httpx.Response], Any]


def _post(path: str) -> Callable[[Tenant, dict[str, Any]], httpx.Response]:
    def write(tenant: Tenant, body: dict[str, Any]) -> httpx.Response:
        return tenant.client.post(
            path, content=json.dumps(body), headers={"Content-Type": "application/json"}
        )

    return write


def _agent_read(path: tuple[str, ...]) -> Callable[[Tenant, httpx.Response], Any]:
    def read(tenant: Tenant, response: httpx.Response) -> Any:
        value: Any = tenant.client.get(f"/kalimera/ai-agent/{response.json()['id']}").json()
        for part in path:
            value = value[part]
        return value

    return read


def _contact_read(name: str) -> Callable[[Tenant, httpx.Response], Any]:
    def read(tenant: Tenant, response: httpx.Response) -> Any:
        return tenant.client.get(f"/kalimera/contact/{response.json()['id']}").json()[name]

    return read


def _conversation_read(name: str) -> Callable[[Tenant, httpx.Response], Any]:
    def read(tenant: Tenant, response: httpx.Response) -> Any:
        return tenant.client.get(f"/kalimera/conversations/{response.json()['id']}").json()[name]

    return read


AGENT = {"name": "Agent", "type": "inbound"}
CONTACT = {"first_name": "Maria", "last_name": "Papadopoulou"}


def _agent_field(name: str) -> Field:
    return Field(
        "agents",
        name,
        _post("/kalimera/ai-agent"),
        lambda v: {**AGENT, name: v},
        _agent_read((name,)),
    )


def _section_field(section: str, name: str) -> Field:
    return Field(
        "agents",
        f"{section}.{name}",
        _post("/kalimera/ai-agent"),
        lambda v: {**AGENT, section: {name: v}},
        _agent_read((section, name)),
    )


def _contact_field(name: str) -> Field:
    return Field(
        "contacts",
        name,
        _post("/kalimera/contact"),
        lambda v: {**CONTACT, name: v},
        _contact_read(name),
    )


def _conversation_field(name: str) -> Field:
    return Field(
        "conversations",
        name,
        _post("/kalimera/conversations"),
        lambda v: {"profile_type": "inbound", name: v},  # agent_id added per tenant
        _conversation_read(name),
    )


FIELDS = [
    *(_agent_field(n) for n in ("name", "description", "avatar")),
    _section_field("ai_hub", "SystemPrompt"),
    _section_field("experimental_features", "AnyFlag"),
    *(
        _contact_field(n)
        for n in ("first_name", "last_name", "contact_no", "email", "language", "voice")
    ),
    *(_conversation_field(n) for n in ("title", "from_number", "to_number", "language")),
]


@pytest.mark.parametrize("field", FIELDS, ids=[f"{f.domain}.{f.name}" for f in FIELDS])
def test_odd_text_in_every_field_is_a_4xx_naming_it_or_stored_as_sent(
    tenant: Tenant, field: Field
) -> None:
    agent_id = create(tenant.client) if field.domain == "conversations" else None
    for kind, value in ODD.items():
        body = field.body(value)
        if agent_id is not None:
            body = {**body, "agent_id": agent_id, "id": str(uuid.uuid4())}
        response = field.write(tenant, body)
        assert response.status_code < 500, (kind, response.text[:300])
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            named = str(problem.get("errors")) + str(problem["detail"])
            leaf = field.name.split(".")[-1]
            section = field.name.split(".")[0]
            assert leaf in named or section in named, (kind, problem)
        else:
            assert response.status_code in (200, 201), (kind, response.text[:300])
            assert field.read(tenant, response) == value, kind


def test_odd_text_in_updates_and_searches_is_never_a_5xx(tenant: Tenant) -> None:
    agent_id = create(tenant.client)
    contact = tenant.client.post("/kalimera/contact", json=CONTACT).json()
    conversation = tenant.client.post(
        "/kalimera/conversations", json={"agent_id": agent_id, "profile_type": "inbound"}
    ).json()
    updates = [
        ("PUT", f"/kalimera/ai-agent/{agent_id}", "name"),
        ("PUT", f"/kalimera/ai-agent/{agent_id}/web_talk", "Greeting"),
        ("PUT", f"/kalimera/contact/{contact['id']}", "last_name"),
        ("PATCH", f"/kalimera/conversations/{conversation['id']}", "title"),
    ]
    for kind, value in ODD.items():
        for method, path, name in updates:
            response = tenant.client.request(
                method,
                path,
                content=json.dumps({name: value}),
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code < 500, (kind, path, response.text[:300])
        # A surrogate cannot be UTF-8: the URL carries the bytes of one (as CESU-8 would).
        query = quote(value[:5_000].encode("utf-8", "surrogatepass"), safe="")
        for path in ("/kalimera/ai-agent", "/kalimera/contact"):
            response = tenant.client.get(f"{path}?search={query}")
            assert response.status_code < 500, (kind, path, response.text[:300])
