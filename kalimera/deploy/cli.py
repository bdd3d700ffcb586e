"""``kalimera openapi``: write the OpenAPI document API Management imports."""

from pathlib import Path
from typing import Annotated

import typer

deploy_cli = typer.Typer()


@deploy_cli.command()
def openapi(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write; default stdout."),
    ] = None,
) -> None:
    """Print (or write) the app's OpenAPI document, as infra/apim/openapi.json commits it."""
    from kalimera.deploy.openapi import LOAD_JSON_LIMIT, render, served_document

    text = render(served_document())
    if output is None:
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output} ({len(text)} characters)", err=True)
    if len(text) > LOAD_JSON_LIMIT:
        typer.echo(
            f"warning: over Bicep's loadJsonContent limit of {LOAD_JSON_LIMIT} characters",
            err=True,
        )
