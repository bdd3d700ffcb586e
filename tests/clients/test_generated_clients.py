"""Clients generated from the committed OpenAPI document, as a client developer makes them: a
TypeScript one (openapi-typescript) that type-checks a console's calls, and a Python one
(openapi-python-client) whose calls drive the running app. Either generator warning, a type
error or a failed call fails the suite: the document is the product for these users."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, Tenant

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "infra" / "apim" / "openapi.json"
HERE = Path(__file__).parent
NPX = ("npx", "--no-install")
# In a venv of its own (make install): it pins typer below the app's.
GENERATOR = ROOT / ".venv" / "clients" / "bin" / "openapi-python-client"


def _run(*args: str | Path, cwd: Path = ROOT) -> str:
    # The generator's venv first: openapi-python-client formats what it writes with its ruff.
    path = f"{GENERATOR.parent}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_the_typescript_client_type_checks_a_consoles_calls(tmp_path: Path) -> None:
    out = _run(*NPX, "openapi-typescript", DOCUMENT, "--output", tmp_path / "api.d.ts")
    assert "warn" not in out.lower(), out
    shutil.copy(HERE / "usage.ts", tmp_path / "usage.ts")
    _run(
        *NPX, "tsc", "--noEmit", "--strict", "--target", "es2022", "--module", "es2022",
        "--moduleResolution", "bundler", tmp_path / "usage.ts",
    )  # fmt: skip


@pytest.fixture(scope="module")
def python_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    where = tmp_path_factory.mktemp("client")
    out = _run(
        GENERATOR, "generate", "--path", DOCUMENT, "--output-path", where / "kalimera_client",
        "--meta", "none", "--config", HERE / "openapi-python-client.yaml",
        cwd=where,
    )  # fmt: skip
    assert "warning" not in out.lower(), out
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module("kalimera_client")
    finally:
        sys.path.remove(str(where))
        for name in [m for m in sys.modules if m.split(".")[0] == "kalimera_client"]:
            del sys.modules[name]


def test_the_python_client_drives_the_app(
    python_client: object, server: Server, new_tenant: Callable[..., Tenant]
) -> None:
    tenant = new_tenant()
    agents = importlib.import_module("kalimera_client.api.ai_agents")
    conversations = importlib.import_module("kalimera_client.api.conversations")
    statistics = importlib.import_module("kalimera_client.api.statistics")
    models = importlib.import_module("kalimera_client.models")
    client = python_client.AuthenticatedClient(base_url=server.url, token=tenant.token)  # type: ignore[attr-defined]

    created = importlib.import_module(f"{agents.__name__}.create_agent").sync(
        client=client, body=models.AgentCreate(name="Reception")
    )
    assert isinstance(created, models.AgentCreated), created
    read = importlib.import_module(f"{agents.__name__}.get_agent").sync(created.id, client=client)
    assert isinstance(read, models.AgentRead)
    assert read.name == "Reception"

    page = importlib.import_module(f"{conversations.__name__}.list_conversations").sync(
        client=client, agent_id=created.id
    )
    assert isinstance(page, models.ConversationPage)
    assert page.total == 0

    history = importlib.import_module(f"{statistics.__name__}.get_statistics_history").sync(
        client=client
    )
    assert isinstance(history, models.History), history

    # An error answer is a typed Problem, not an exception or None.
    missing = importlib.import_module(f"{agents.__name__}.get_agent").sync(
        created.id.__class__(int=0), client=client
    )
    assert isinstance(missing, models.Problem)
    assert missing.status == 404
