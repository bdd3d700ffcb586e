"""The database roles on Azure, made by the operator (the server's Entra administrator) in the
postdeploy hook before the migrations run.

- ``kalimera_owner`` (NOLOGIN) owns the schema's objects: the hook runs ``kalimera migrate`` as
  the operator with ``SET ROLE kalimera_owner``, so whoever operates next (another Entra admin)
  can migrate too, and no login role owns anything.
- The app's identity is a plain login role (``pgaadauth_create_principal_with_oid``: an Entra
  service principal, not an administrator), a member of ``kalimera_app``, that can read and write
  rows of every table the owner makes, and cannot create, alter or drop anything. A stolen app
  token therefore cannot change the schema, switch row-level security off, or read other
  databases' objects.

Objects an earlier deployment left owned by someone else (``azure_pg_admin``, when the app was an
Entra admin) are handed to the owner, so their grants follow the same rules.

Usage (the hook's environment): ``python scripts/postgres_roles.py --app NAME --app-object-id OID``
with ``DATABASE_URL`` naming the ``kalimera`` database as the operator and ``PGPASSWORD`` their
Entra token. ``--local`` makes the app role with ``CREATE ROLE`` (tests, a local server), where
the Entra function does not exist.
"""

from __future__ import annotations

import argparse
import os

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg import sql

OWNER = "kalimera_owner"
# The role the app's transactions switch to (SET LOCAL ROLE, KALIMERA_DB_APP_ROLE): the
# row-level security migration creates it where the migrating user may create roles; the owner
# may not, so it is made here, and the app's login role is made a member.
APP_GROUP = "kalimera_app"

# Relations and functions of the schema that no extension owns, with their owner.
_FOREIGN_OBJECTS = """
SELECT format('ALTER %%s %%s OWNER TO %%I',
              CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                             WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
              c.oid::regclass, %(owner)s::text)
  FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace
   AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
   AND pg_get_userbyid(c.relowner) <> %(owner)s
UNION ALL
SELECT format('ALTER FUNCTION %%s OWNER TO %%I', p.oid::regprocedure, %(owner)s::text)
  FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
   AND pg_get_userbyid(p.proowner) <> %(owner)s
"""


def _role_exists(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %(n)s", {"n": name}).fetchone()
    return row is not None


def create_app_principal(
    url: str, app: str, object_id: str | None, *, owner: str = OWNER, group: str = APP_GROUP
) -> None:
    """The owner and app-group roles and the app's login role (cluster-wide, so made from the
    ``postgres`` database, where Azure's ``pgaadauth_*`` functions live)."""
    params = pg_conninfo.conninfo_to_dict(url)
    params["dbname"] = "postgres"
    with psycopg.connect(**params, autocommit=True) as conn:  # type: ignore[arg-type]
        for role in (owner, group):
            if not _role_exists(conn, role):
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(owner)))
        # The migrations, run as the owner, may then use the group (grants, SET ROLE).
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(owner)))
        if _role_exists(conn, app):
            return
        if object_id is None:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(app)))
        else:
            conn.execute(
                "SELECT * FROM pgaadauth_create_principal_with_oid("
                "%(name)s, %(oid)s, 'service', false, false)",
                {"name": app, "oid": object_id},
            )


def grant(url: str, app: str, *, owner: str = OWNER, group: str = APP_GROUP) -> None:
    """Ownership to ``owner``, rows (not the schema) to ``app``; idempotent."""
    database = str(pg_conninfo.conninfo_to_dict(url).get("dbname"))
    role, me = sql.Identifier(app), sql.Identifier(owner)
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute(
            sql.SQL("GRANT CONNECT, CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(database), me
            )
        )
        conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(me))
        for (statement,) in conn.execute(_FOREIGN_OBJECTS, {"owner": owner}).fetchall():
            conn.execute(statement)
        conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), role)
        )
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
        conn.execute(
            sql.SQL(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}"
            ).format(role)
        )
        conn.execute(
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(role)
        )
        # Whatever later migrations create (as the owner) gets the same grants.
        conn.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public"
                " GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}"
            ).format(me, role)
        )
        conn.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public"
                " GRANT USAGE, SELECT ON SEQUENCES TO {}"
            ).format(me, role)
        )
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), role))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", required=True, help="the app identity's name (its role)")
    parser.add_argument("--app-object-id", help="its Entra object (principal) id")
    parser.add_argument("--local", action="store_true", help="CREATE ROLE instead of Entra")
    args = parser.parse_args()
    if not args.local and not args.app_object_id:
        parser.error("--app-object-id is required on Azure")
    url = os.environ["DATABASE_URL"]
    create_app_principal(url, args.app, None if args.local else args.app_object_id)
    grant(url, args.app)
    print(f"roles ready: {OWNER} owns the schema, {args.app} reads and writes rows")


if __name__ == "__main__":
    main()
