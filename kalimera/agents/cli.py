"""``kalimera secrets``: maintenance of the agents' encrypted secrets."""

import typer

from kalimera.cli_support import console, with_services

secrets_cli = typer.Typer(help="Manage the agents' encrypted secrets.", no_args_is_help=True)


@secrets_cli.command("rotate")
def rotate() -> None:
    """Re-encrypt every secret with KALIMERA_ENCRYPTION_KEY.

    Rotation: set the new key as KALIMERA_ENCRYPTION_KEY and the previous one as
    KALIMERA_ENCRYPTION_KEY_OLD on every instance, run this once, then drop the old key.
    """
    from kalimera.agents.service import rotate_all

    result = with_services(lambda services: rotate_all(services=services))
    console.print(f"agents: {result.seen}, re-encrypted: {result.changed}, failed: {result.failed}")
    if result.failed:
        raise typer.Exit(1)
