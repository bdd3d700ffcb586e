"""The Azure database roles (scripts/postgres_roles.py) on a real Postgres: the migrations run as
the owner role, and the app's role reads and writes rows of every table but cannot change the
schema. Entra is the one difference (``--local`` makes the app role with CREATE ROLE)."""

from __future__ import annotations

import importlib.util
import secrets
import uuid
from collections.abc import Iterator
from types import ModuleType

import psycopg
import pytest
from psycopg import conninfo as pg_conninfo
from psycopg import sql

from kalimera.dev.localstack import drop_database, ensure_database
from kalimera.migrate import migrate
from tests.conftest import ADMIN_URL
from tests.infra.bicep import ROOT


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "postgres_roles", ROOT / "scripts" / "postgres_roles.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def group_of(owner: str) -> str:
    return owner.replace("owner", "app")


def url_as(base: str, **changes: str) -> str:
    params = pg_conninfo.conninfo_to_dict(base)
    params.update(changes)
    return pg_conninfo.make_conninfo(**params)  # type: ignore[arg-type]


@pytest.fixture
def roles() -> Iterator[tuple[str, str, str]]:
    """(operator URL of a fresh database, owner role, app role); all dropped afterwards. The
    roles are the server's, so each test names its own (and its own app group)."""
    suffix = secrets.token_hex(4)
    owner, app = f"kalimera_owner_{suffix}", f"id-func-{suffix}"
    url = url_as(ADMIN_URL, dbname=f"kalimera_roles_{suffix}")
    ensure_database(url)
    try:
        yield url, owner, app
    finally:
        drop_database(url)
        with psycopg.connect(url_as(ADMIN_URL, dbname="postgres"), autocommit=True) as conn:
            for role in (app, owner, group_of(owner)):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_the_app_role_reads_and_writes_rows_and_cannot_change_the_schema(
    roles: tuple[str, str, str],
) -> None:
    url, owner, app = roles
    script = load_script()
    script.create_app_principal(url, app, None, owner=owner, group=group_of(owner))
    script.grant(url, app, owner=owner, group=group_of(owner))
    # The hook migrates as the operator with SET ROLE to the owner.
    migrate(url_as(url, options=f"-c role={owner}"))
    # Idempotent: every deployment runs it again.
    script.grant(url, app, owner=owner, group=group_of(owner))

    with psycopg.connect(url, autocommit=True) as admin:
        owners = dict(
            admin.execute(
                "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c"
                " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')"
            ).fetchall()
        )
        assert owners, "the migrations made no tables"
        assert set(owners.values()) == {owner}
        role = admin.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles"
            " WHERE rolname = %(r)s",
            {"r": app},
        ).fetchone()
        assert role == (False, False, False, False)
        # The app's transactions switch to the group role (SET LOCAL ROLE): it must be a member.
        assert admin.execute(
            "SELECT pg_has_role(%(r)s, %(g)s, 'MEMBER')", {"r": app, "g": group_of(owner)}
        ).fetchone() == (True,)
        for table in owners:
            assert admin.execute(
                "SELECT has_table_privilege(%(r)s, %(t)s, 'SELECT,INSERT,UPDATE,DELETE')",
                {"r": app, "t": table},
            ).fetchone() == (True,), table

    tenant = uuid.uuid4()
    with psycopg.connect(url_as(url, user=app), autocommit=True) as conn:
        # Row-level security: the app's role writes a tenant's rows only as that tenant.
        conn.execute("SELECT set_config('kalimera.tenant_id', %(t)s, false)", {"t": str(tenant)})
        conn.execute(
            "INSERT INTO kalimera_api_tokens (id, tenant_id, name, token_hash, scopes)"
            " VALUES (%(id)s, %(t)s, 'roles', %(h)s, '{}')",
            {"id": uuid.uuid4(), "t": tenant, "h": secrets.token_bytes(32)},
        )
        conn.execute("DELETE FROM kalimera_api_tokens WHERE tenant_id = %(t)s", {"t": tenant})
        for statement in (
            "CREATE TABLE kalimera_intruder (id int)",
            "ALTER TABLE kalimera_api_tokens ADD COLUMN intruder int",
            "ALTER TABLE kalimera_api_tokens DISABLE ROW LEVEL SECURITY",
            "DROP TABLE kalimera_api_tokens",
            "TRUNCATE kalimera_api_tokens",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_objects_an_earlier_deployment_left_are_handed_to_the_owner(
    roles: tuple[str, str, str],
) -> None:
    """Before, the app was an Entra admin and objects belonged to azure_pg_admin (here the
    operator itself): the script hands them to the owner so the app's grants apply to them."""
    url, owner, app = roles
    migrate(url)
    script = load_script()
    script.create_app_principal(url, app, None, owner=owner, group=group_of(owner))
    script.grant(url, app, owner=owner, group=group_of(owner))
    with psycopg.connect(url, autocommit=True) as admin:
        others = admin.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"
            " AND c.relkind IN ('r', 'p', 'S', 'v') AND pg_get_userbyid(c.relowner) <> %(o)s",
            {"o": owner},
        ).fetchall()
        assert others == []
    migrate(url_as(url, options=f"-c role={owner}"))  # the owner can migrate further
