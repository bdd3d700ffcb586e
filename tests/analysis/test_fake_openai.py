"""The fake model server holds requests to what the real services accept, so a test that passes
against it says something: a missing strict schema, an invalid one, a wrong key or a missing API
version is refused as OpenAI and Azure OpenAI refuse it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI

SCHEMA = {
    "type": "object",
    "properties": {"summary": {"type": "string"}},
    "required": ["summary"],
    "additionalProperties": False,
}


def body(schema: Any = SCHEMA, **extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-4.1-mini",
        "messages": [{"role": "user", "content": "[00:01] Caller: hello there"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "call_analysis", "strict": True, "schema": schema},
        },
        **extra,
    }


def post(fake: FakeOpenAI, payload: dict[str, Any], key: str = "test-key") -> httpx.Response:
    return httpx.post(
        f"{fake.base_url}/chat/completions",
        json=payload,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )


def test_a_good_request_gets_an_answer_of_the_schema_with_usage(fake_openai: FakeOpenAI) -> None:
    response = post(fake_openai, body())
    assert response.status_code == 200
    completion = response.json()
    assert completion["choices"][0]["message"]["content"] == '{"summary": "hello there"}'
    assert completion["usage"]["prompt_tokens"] > 0
    assert len(fake_openai.requests) == 1


@pytest.mark.parametrize(
    ("payload", "fault"),
    [
        ({**body(), "response_format": {"type": "json_object"}}, "json_schema"),
        (body(schema={**SCHEMA, "additionalProperties": True}), "additionalProperties"),
        (body(schema={**SCHEMA, "required": []}), "required must list every property"),
        (body(schema={"type": "objekt"}), "Invalid schema"),
        ({**body(), "messages": []}, "messages"),
        ({**body(), "model": ""}, "model"),
    ],
)
def test_a_request_real_servers_refuse_is_refused(
    fake_openai: FakeOpenAI, payload: dict[str, Any], fault: str
) -> None:
    response = post(fake_openai, payload)
    assert response.status_code == 400
    assert fault in response.json()["error"]["message"]


def test_a_wrong_key_is_401(fake_openai: FakeOpenAI) -> None:
    assert post(fake_openai, body(), key="nope").status_code == 401


def test_the_azure_path_needs_an_api_version_and_a_credential(fake_openai: FakeOpenAI) -> None:
    url = f"{fake_openai.endpoint}/openai/deployments/gpt-4.1-mini/chat/completions"
    entra = {"Authorization": "Bearer fake-entra"}
    assert httpx.post(url, json=body(), headers=entra, timeout=10).status_code == 404
    versioned = f"{url}?api-version=2024-10-21"
    assert httpx.post(versioned, json=body(), timeout=10).status_code == 401
    assert httpx.post(versioned, json=body(), headers=entra, timeout=10).status_code == 200
    keyed = {"api-key": "test-key"}
    assert httpx.post(versioned, json=body(), headers=keyed, timeout=10).status_code == 200
