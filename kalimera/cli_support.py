"""What every ``kalimera`` command shares: the console, the settings, a fresh set of clients.

A module of its own so imports go one way: ``kalimera/cli.py`` gathers the command groups
(``kalimera/<domain>/cli.py``, ``kalimera/dev/cli.py``) and they all import this, never the root.
A command imports the service it calls inside its body, so ``kalimera --help`` (or a typo)
answers without loading the Azure, Redis and Postgres clients.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kalimera.settings import Settings, SettingsError, get_settings

if TYPE_CHECKING:
    from kalimera.services import Services

T = TypeVar("T")

console = Console(stderr=True)


def settings() -> Settings:
    """The settings, or exit 2 with the message naming what is missing or malformed."""
    try:
        return get_settings()
    except SettingsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def with_services(work: Callable[[Services], Awaitable[T]]) -> T:
    """Run ``work(services)`` on a fresh event loop and close the clients after."""
    from kalimera.services import Services  # the clients load only when a command runs

    async def main() -> T:
        services = Services(settings())
        try:
            return await work(services)
        finally:
            await services.aclose()

    return asyncio.run(main())


def progress_bar() -> Progress:
    """A bar on the console for long commands (``stats rollup``, ``demo seed``)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
