"""The OpenAPI document as clients and API Management read it: FastAPI's, plus what only the whole
app knows.

- ``Problem``, the schema of every error answer;
- 413 on every operation with a body (the body guard answers it before the route runs) and 429
  on every operation (API Management's rate limit, answered as problem+json by
  ``infra/apim/policy.xml``), each with the header that says when to retry;
- ``servers``: API Management's gateway and ``make run``'s address;
- the bearer scheme on every operation but health's, which declares that it needs none;
- each request body's example at its media type, taken from its schema's first example;
- every problem+json answer written once, in ``components/responses`` (``Problem404`` …), and
  referred to by each operation: the document stays within what API Management imports inline
  (``LOAD_JSON_LIMIT``), and generators name one error type per status.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from kalimera import problems

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"loc": {"type": "array", "items": {}}, "msg": {"type": "string"}},
            },
        },
    },
}

SERVERS: list[dict[str, Any]] = [
    {
        "url": "https://{apim}.azure-api.net/v1",
        "description": "Azure API Management (the deployment's APIM_GATEWAY_URL)",
        "variables": {"apim": {"default": "apim-kalimera", "description": "The APIM name"}},
    },
    {"url": "http://127.0.0.1:7071", "description": "make run, on a developer's machine"},
]
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer"},
    }
}
TOO_MANY = {
    **problems.problem_responses(429)[429],
    "description": "Too many requests: API Management's rate limit (600 a minute per "
    "subscription) or a store the request waits for",
    "headers": RETRY_AFTER,
}
# The routes anyone may call: they declare an empty security requirement.
OPEN_TAGS = frozenset({"health"})


def document(app: FastAPI) -> dict[str, Any]:
    """Built once per app, on first request."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            servers=SERVERS,
            license_info={"name": "Proprietary", "identifier": "LicenseRef-Kalimera-Proprietary"},
        )
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        shared = components.setdefault("responses", {})
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                _complete(operation, components["schemas"])
                _share_problems(operation["responses"], shared)
        app.openapi_schema = schema
    return app.openapi_schema


def _complete(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    responses.setdefault("429", TOO_MANY)
    if set(operation.get("tags", ())) & OPEN_TAGS:
        operation["security"] = []
    body = operation.get("requestBody")
    if body is None:
        return
    responses.setdefault("413", problems.problem_responses(413)[413])
    for media in body.get("content", {}).values():
        example = _first_example(media.get("schema", {}), schemas)
        if example is not None:
            media.setdefault("example", example)


def _share_problems(responses: dict[str, Any], shared: dict[str, Any]) -> None:
    """Each response that is a standard problem answer becomes a reference to its one copy."""
    for status, response in responses.items():
        name = f"Problem{status}"
        standard = TOO_MANY if status == "429" else _standard(status)
        if response == standard:
            shared[name] = standard
            responses[status] = {"$ref": f"#/components/responses/{name}"}


def _standard(status: str) -> dict[str, Any] | None:
    if not status.isdigit() or int(status) < 400:
        return None
    return problems.problem_responses(int(status))[int(status)]


def _first_example(schema: dict[str, Any], schemas: dict[str, Any]) -> Any:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        schema = schemas.get(ref.rsplit("/", 1)[1], {})
    examples = schema.get("examples")
    return examples[0] if examples else None
