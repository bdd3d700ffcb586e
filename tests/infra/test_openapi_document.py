"""The OpenAPI document API Management imports is the one the app serves.

infra/apim/openapi.json is loaded into APIM at provision time; a route added to the code but not
to the file would be unreachable through APIM (or one removed would still be advertised)."""

import httpx

from kalimera.deploy.openapi import COMMAND, DOCUMENT, LOAD_TEXT_LIMIT, render, served_document


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


def test_the_document_fits_bicep_load_text_content() -> None:
    assert len(DOCUMENT.read_text(encoding="utf-8")) <= LOAD_TEXT_LIMIT


def test_the_command_writes_the_document_apim_imports(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from kalimera.cli import cli

    out = tmp_path / "openapi.json"
    result = CliRunner().invoke(cli, ["openapi", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == render(served_document())
