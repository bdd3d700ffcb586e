"""Real services for the integration tests: a fresh database, a Redis db, a private Azurite.

Two tiers (README.md, "Tests and benchmarks"): ``tests/unit`` needs no service, and nothing
there may request a fixture of this stack (``tests/unit/conftest.py`` refuses one at
collection); everything else runs against the services started here. The fixtures are
session-scoped and start their service only when a test first asks for it, so ``make test-unit``
starts none of them. The suite-wide secret-leak check hangs on ``settings_env``, which every test
that reaches the app goes through: it runs where the stack runs and nowhere else.

Each test run (each pytest-xdist worker of one: ``make test`` starts one a core) creates its own
database (dropped at the end), Redis db and Azurite data folder (removed at the end); tenants are
random UUIDs, so tests isolate by tenant within a run.

The API suite runs through PgBouncer in transaction mode, once. The API suite is every test that
reaches the app through the session's ``settings`` (``settings_env``): every folder but
``tests/unit`` (no service) and ``tests/infra`` (its own settings, as Azure's). Their app's
``DATABASE_URL`` is a private PgBouncer (``pool_mode = transaction``, no prepared statements, as
Azure's built-in PgBouncer on port 6432 runs) in front of the run's database, so a query that
relies on session state (a ``SET`` without ``LOCAL``, a session advisory lock, a statement
prepared on another server connection) fails or leaks here rather than on Azure. Only the
migrations connect directly (``database_url``): they hold a session advisory lock for the whole
run, which a transaction pooler cannot keep (on Azure they use port 5432 too, docs/deploy.md).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import random
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from fastapi import APIRouter
from pydantic import BaseModel

from kalimera.app import create_app
from kalimera.auth import DEFAULT_SCOPES, Scope, issue_token
from kalimera.deps import AgentsRead
from kalimera.dev.localstack import LocalStack, drop_database, ensure_database, free_port
from kalimera.migrate import migrate
from kalimera.services import Services
from kalimera.settings import Settings
from kalimera.storage import ensure_containers
from tests.support.settings import settings_with

# Fixtures shared across folders: ``call`` (one tenant's agent and conversation, for every folder
# that ingests recordings), ``blackhole`` (a hung service, for the outage tests) and
# ``fake_openai`` (a Chat Completions server, for the analysis).
pytest_plugins = ("tests.support.calls", "tests.support.outages", "tests.support.fake_openai")

ADMIN_URL = os.environ.get(
    "KALIMERA_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TEST_REDIS = os.environ.get("KALIMERA_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def _with_db(url: str, name: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    params["dbname"] = name
    return make_conninfo(**params)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    root = tmp_path_factory.mktemp("stack")
    with LocalStack(root) as local:
        yield local


@pytest.fixture(scope="session")
def database_url(stack: LocalStack) -> Iterator[str]:
    server = stack.postgres(ADMIN_URL)
    url = _with_db(server, f"kalimera_test_{secrets.token_hex(6)}")
    ensure_database(url)
    migrate(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def pooled_database_url(stack: LocalStack, database_url: str) -> str:
    """The run's database through PgBouncer in transaction mode: what the app connects to."""
    return stack.pgbouncer(database_url)


def _redis_db() -> int:
    """A Redis db of 1-15 for this run, a different one for each pytest-xdist worker: the
    workers of one run share ``PYTEST_XDIST_TESTRUNUID`` and number themselves ``gw0``, ``gw1``."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    start = int(run, 16) if run else random.randrange(15)
    return 1 + (start + int(worker.removeprefix("gw"))) % 15


@pytest.fixture(scope="session")
def redis_url(stack: LocalStack) -> str:
    base = stack.redis(TEST_REDIS + "/0")
    return base.rsplit("/", 1)[0] + f"/{_redis_db()}"


@pytest.fixture(scope="session")
def storage_connection_string(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> str:
    return stack.azurite(tmp_path_factory.mktemp("azurite"))


@pytest.fixture(scope="session")
def settings(settings_env: dict[str, str]) -> Settings:
    settings = settings_with(settings_env)

    async def create_storage() -> None:
        services = Services(settings)
        try:
            await ensure_containers(services.blobs, services.tables, settings)
        finally:
            await services.aclose()

    run_async(create_storage())
    return settings


@pytest.fixture(scope="session")
def settings_env(
    pooled_database_url: str,
    redis_url: str,
    storage_connection_string: str,
    no_planted_secret_leaks_after_the_suite: None,
) -> dict[str, str]:
    """The environment a production instance of this stack would have (and, through it, the
    secret-leak check over every test that reaches the app)."""
    return {
        "KALIMERA_ENV": "production",
        "DATABASE_URL": pooled_database_url,
        "KALIMERA_DB_TRANSACTION_POOLING": "true",
        "REDIS_URL": redis_url,
        "KALIMERA_STORAGE": storage_connection_string,
        "KALIMERA_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "KALIMERA_AUTH_CACHE_SECONDS": "1",
    }


probe = APIRouter()


@probe.get("/kalimera/_auth-probe", include_in_schema=False)
async def auth_probe(principal: AgentsRead) -> dict[str, str]:
    """A test-only route: checks auth apart from any domain."""
    return {"tenant_id": str(principal.tenant_id)}


# Secret values tests plant (agents' API keys, passwords, ...): after the whole run none may
# appear in any log record of the run or in any Redis key or value (quality-bars.md, secrets).
# Every test that plants one reaches the app, hence ``settings_env``, which starts this check.
PLANTED: set[str] = set()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="session")
def no_planted_secret_leaks_after_the_suite(redis_url: str) -> Iterator[None]:
    collect = _Collect()
    collect.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(args)s"))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)  # what production logs: INFO and up
    root.addHandler(collect)
    yield
    root.removeHandler(collect)
    root.setLevel(level)
    if not PLANTED:
        return
    logs = "\n".join(collect.lines)
    client = redis.Redis.from_url(redis_url)
    stored = b"\n".join(
        key + b"=" + (client.get(key) or b"" if client.type(key) == b"string" else b"")
        for key in client.scan_iter(count=1000)
    )
    client.close()
    leaked = [value for value in PLANTED if value in logs or value.encode() in stored]
    assert leaked == [], f"planted secrets found in logs or Redis after the suite: {leaked}"


class ProbeBody(BaseModel):
    name: str
    count: int


@probe.post("/kalimera/_probe/{item_id}", include_in_schema=False)
async def body_probe(item_id: uuid.UUID, body: ProbeBody, principal: AgentsRead) -> dict[str, str]:
    """A test-only route: checks body and path validation apart from any domain."""
    return {"item_id": str(item_id), "name": body.name, "tenant_id": str(principal.tenant_id)}


class Server:
    """The app under uvicorn in a thread, as ``kalimera run`` serves it (plus the auth probe)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        self.app.include_router(probe)
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                msg = "the test server did not start"
                raise RuntimeError(msg)
            threading.Event().wait(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def server(settings: Settings) -> Iterator[Server]:
    srv = Server(settings)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def anon(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)


def make_token(
    settings: Settings, tenant_id: uuid.UUID, scopes: tuple[Scope, ...] = DEFAULT_SCOPES
) -> str:
    return issue_token(settings, tenant_id=tenant_id, name="test", scopes=scopes)[1]


class Tenant:
    """A random tenant and an authenticated client for it."""

    def __init__(
        self, server: Server, scopes: tuple[Scope, ...] = (*DEFAULT_SCOPES, Scope.AGENTS_RUNTIME)
    ) -> None:
        self.id = uuid.uuid4()
        self.token = make_token(server.settings, self.id, scopes)
        self.client = httpx.Client(
            base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {self.token}"}
        )


@pytest.fixture
def new_tenant(server: Server) -> Iterator[Callable[..., Tenant]]:
    made: list[Tenant] = []

    def factory(scopes: tuple[Scope, ...] = (*DEFAULT_SCOPES, Scope.AGENTS_RUNTIME)) -> Tenant:
        tenant = Tenant(server, scopes)
        made.append(tenant)
        return tenant

    yield factory
    for tenant in made:
        tenant.client.close()


@pytest.fixture
def tenant(new_tenant: Callable[..., Tenant]) -> Tenant:
    return new_tenant()


@pytest.fixture
def tmp_local(tmp_path: Path) -> Path:
    return tmp_path
