"""The OpenAPI document API Management imports is the one the app serves.

infra/apim/openapi.json is loaded into APIM at provision time; a route added to the code but not
to the file would be unreachable through APIM (or one removed would still be advertised)."""

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from typing import Any

import httpx

from kalimera.deploy.openapi import COMMAND, DOCUMENT, LOAD_JSON_LIMIT, render, served_document


def test_the_committed_openapi_document_is_what_the_app_serves(anon: httpx.Client) -> None:
    served = anon.get("/kalimera/openapi.json")
    assert served.status_code == 200
    committed = DOCUMENT.read_text(encoding="utf-8")
    assert committed == render(served.json()), (
        f"infra/apim/openapi.json is stale: run `{COMMAND}` and commit the file"
    )


def test_the_cli_renders_the_served_document(anon: httpx.Client) -> None:
    # The command needs no running service: the same document, built offline.
    assert render(served_document()) == render(anon.get("/kalimera/openapi.json").json())


def test_api_management_loads_the_document_within_bicep_limits() -> None:
    assert len(DOCUMENT.read_text(encoding="utf-8")) <= LOAD_JSON_LIMIT
    bicep = (DOCUMENT.parents[1] / "app" / "apim.bicep").read_text(encoding="utf-8")
    assert "value: string(loadJsonContent('../apim/openapi.json'))" in bicep


def test_the_command_writes_the_document_apim_imports(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from kalimera.cli import cli

    out = tmp_path / "openapi.json"
    result = CliRunner().invoke(cli, ["openapi", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == render(served_document())


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for item in document["paths"].values()
        for method, operation in item.items()
        if method in {"get", "put", "post", "delete", "patch", "head", "options"}
    ]


def test_every_operation_has_its_own_camel_case_id() -> None:
    ids = [operation.get("operationId") for operation in _operations(served_document())]
    camel = re.compile(r"[a-z]+(?:[A-Z][a-z0-9]*)*")
    assert all(isinstance(i, str) and camel.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == len(ids), sorted(ids)


def test_every_link_names_an_operation_that_exists() -> None:
    document = served_document()
    ids = {operation["operationId"] for operation in _operations(document)}
    linked = {
        link["operationId"]
        for operation in _operations(document)
        for response in operation.get("responses", {}).values()
        for link in response.get("links", {}).values()
    }
    assert linked, "the agent create documents its links"
    assert linked <= ids


def test_schema_names_are_the_class_names_with_no_module_path() -> None:
    names = served_document()["components"]["schemas"]
    assert [name for name in names if "__" in name] == []


def test_redocly_recommended_rules_find_no_problem() -> None:
    """`make lint` runs the same; here the count of warnings is checked too (Redocly exits 0 on
    warnings)."""
    done = subprocess.run(
        ["npx", "--no-install", "redocly", "lint", str(DOCUMENT), "--format=json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(done.stdout)
    assert report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}, report["problems"]


def test_every_operation_documents_the_rate_limit_and_its_security() -> None:
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    assert document["servers"]
    assert document["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            shared = document["components"]["responses"]
            answers = {
                status: shared[r["$ref"].rsplit("/", 1)[1]] if "$ref" in r else r
                for status, r in operation["responses"].items()
            }
            assert "Retry-After" in answers["429"]["headers"], where
            expected = [] if path.startswith("/kalimera/health") else [{"BearerAuth": []}]
            assert operation["security"] == expected, where
            if "requestBody" in operation:
                assert "413" in operation["responses"], where


def test_api_management_answers_its_rate_limit_as_problem_json() -> None:
    """The 429 the document promises on every operation: APIM's own, reshaped by policy.xml."""
    policy = ET.parse(DOCUMENT.parents[0] / "policy.xml").getroot()  # noqa: S314 - our own file
    limit = policy.find("inbound/rate-limit")
    assert limit is not None
    variable = limit.get("retry-after-variable-name")
    (answer,) = [
        when.find("return-response")
        for when in policy.iterfind("on-error/choose/when")
        if "rate-limit" in when.get("condition", "")
    ]
    assert answer is not None
    status = answer.find("set-status")
    assert status is not None
    assert status.get("code") == "429"
    headers = {h.get("name"): h.findtext("value") for h in answer.iterfind("set-header")}
    assert headers["Content-Type"] == "application/problem+json"
    assert f'"{variable}"' in (headers["Retry-After"] or "")
    body = answer.findtext("set-body") or ""
    for field in ('"type"', '"title"', '"status", 429', '"detail"'):
        assert field in body
