"""Retention (docs/retention.md): an administrator (``settings:admin``) sets how many days a
tenant's calls are kept, sees first how many would go (the dry run), and the timer erases the
older ones in bounded batches, recordings included, never another tenant's."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from kalimera.auth import DEFAULT_SCOPES, Scope
from kalimera.conversations import erasure
from kalimera.settings import Settings
from tests.conftest import Server, Tenant
from tests.conversations.test_erasure import _call, blobs_under, history, rows, sweep
from tests.support.calls import make_agent, query, with_services
from tests.support.cli import kalimera
from tests.support.problems import assert_problem

ADMIN = (*DEFAULT_SCOPES, Scope.SETTINGS_ADMIN)
PATH = "/kalimera/settings/retention"


def _calls(settings: Settings, tenant_id: uuid.UUID, *ages_in_days: float) -> list[uuid.UUID]:
    """Conversations that started this many days ago, written as telephony's reports would."""
    agent_id = make_agent(settings, tenant_id)
    ids = [uuid.uuid4() for _ in ages_in_days]
    for conversation_id, age in zip(ids, ages_in_days, strict=True):
        query(
            settings,
            "INSERT INTO kalimera_conversations (tenant_id, id, agent_id, profile_type,"
            " started_at, last_activity_at, status)"
            " VALUES (%(t)s, %(c)s, %(a)s, 'inbound', now() - make_interval(secs => %(s)s),"
            " now() - make_interval(secs => %(s)s), 'Completed') RETURNING 1",
            {"t": tenant_id, "c": conversation_id, "a": agent_id, "s": age * 86400},
        )
    return ids


def _age(settings: Settings, tenant_id: uuid.UUID, conversation_id: str, days: int) -> None:
    query(
        settings,
        "UPDATE kalimera_conversations SET started_at = started_at - make_interval(days => %(d)s)"
        " WHERE tenant_id = %(t)s AND id = %(c)s RETURNING 1",
        {"d": days, "t": tenant_id, "c": conversation_id},
    )


def _enforce(settings: Settings, tenant_id: uuid.UUID, **options: Any) -> list[Any]:
    return with_services(
        settings,
        lambda services: erasure.enforce_retention(
            services=services, tenant_id=tenant_id, **options
        ),
    )


def _left(settings: Settings, tenant_id: uuid.UUID) -> int:
    return len(rows(settings, "kalimera_conversations", tenant_id))


def test_no_retention_until_set_then_the_dry_run_counts_and_changes_nothing(
    server: Server, new_tenant: Callable[..., Tenant]
) -> None:
    admin = new_tenant(ADMIN)
    _calls(server.settings, admin.id, 40, 35, 31, 29, 1)
    unset = admin.client.get(PATH)
    assert unset.status_code == 200, unset.text
    assert unset.json() == {"days": None, "updated_at": None, "due": 0}

    dry = admin.client.put(PATH, json={"days": 30}, params={"dry_run": "true"})
    assert dry.status_code == 200, dry.text
    assert (dry.json()["days"], dry.json()["due"]) == (30, 3)
    assert admin.client.get(PATH).json()["days"] is None
    assert _enforce(server.settings, admin.id) == []
    assert _left(server.settings, admin.id) == 5

    saved = admin.client.put(PATH, json={"days": 30})
    assert saved.status_code == 200, saved.text
    assert (saved.json()["days"], saved.json()["due"]) == (30, 3)
    assert saved.json()["updated_at"] is not None
    assert admin.client.get(PATH).json() == saved.json()
    (setting,) = rows(server.settings, "kalimera_retention", admin.id)
    assert setting["updated_by"] is not None

    (run,) = _enforce(server.settings, admin.id)
    assert (run.days, run.conversations) == (30, 3)
    assert _left(server.settings, admin.id) == 2
    assert admin.client.get(PATH).json()["due"] == 0
    (entry,) = rows(server.settings, "kalimera_erasure_log", admin.id)
    assert (entry["reason"], entry["conversations"], entry["token_id"]) == ("retention", 3, None)

    removed = admin.client.put(PATH, json={"days": None})
    assert removed.json() == {"days": None, "updated_at": None, "due": 0}
    assert rows(server.settings, "kalimera_retention", admin.id) == []


def test_the_timer_erases_an_old_calls_recordings_and_history(
    server: Server, new_tenant: Callable[..., Tenant]
) -> None:
    settings = server.settings
    admin = new_tenant((*ADMIN, Scope.AGENTS_RUNTIME))
    agent_id, old, _ = _call(server, admin)
    _, recent, _ = _call(server, admin, turns=1)
    _age(settings, admin.id, old, 100)
    assert admin.client.put(PATH, json={"days": 90}).json()["due"] == 1

    with_services(settings, lambda services: erasure.retention_timer(services=services))
    assert admin.client.get(f"/kalimera/conversations/{old}").status_code == 404
    assert admin.client.get(f"/kalimera/conversations/{recent}").status_code == 200
    assert blobs_under(settings, f"{admin.id}/{agent_id}/{old}/") == []
    assert history(settings, admin.id, old) == []
    sweep(settings, admin.id)
    assert rows(settings, "kalimera_erasure_pending", admin.id) == []


def test_a_run_is_bounded_and_the_next_one_continues(
    server: Server, new_tenant: Callable[..., Tenant]
) -> None:
    admin = new_tenant(ADMIN)
    _calls(server.settings, admin.id, *[10 + i for i in range(7)])
    assert admin.client.put(PATH, json={"days": 5}).status_code == 200
    (run,) = _enforce(server.settings, admin.id, batch=2, batches=2)
    assert run.conversations == 4
    assert _left(server.settings, admin.id) == 3
    logged = rows(server.settings, "kalimera_erasure_log", admin.id)
    assert [e["conversations"] for e in logged] == [2, 2]  # a log entry per batch
    (run,) = _enforce(server.settings, admin.id, batch=2, batches=2)
    assert run.conversations == 3
    assert _left(server.settings, admin.id) == 0
    logged = rows(server.settings, "kalimera_erasure_log", admin.id)
    assert sorted(e["conversations"] for e in logged) == [1, 2, 2, 2]


def test_one_tenants_retention_never_erases_anothers_calls(
    server: Server, new_tenant: Callable[..., Tenant]
) -> None:
    a, b = new_tenant(ADMIN), new_tenant(ADMIN)
    _calls(server.settings, a.id, 50)
    _calls(server.settings, b.id, 50, 50)
    assert a.client.put(PATH, json={"days": 10}).json()["due"] == 1
    assert b.client.get(PATH).json() == {"days": None, "updated_at": None, "due": 0}
    with_services(server.settings, lambda services: erasure.enforce_retention(services=services))
    assert _left(server.settings, a.id) == 0
    assert _left(server.settings, b.id) == 2
    assert rows(server.settings, "kalimera_erasure_log", b.id) == []


@pytest.mark.parametrize(
    "body",
    [
        {"days": -1},
        {"days": 0},
        {"days": 3651},
        {"days": 10**20},
        {"days": "30"},
        {"days": True},
        {"days": 1.5},
        {},
        {"days": 30, "hours": 2},
        [30],
    ],
)
def test_bad_retentions_are_422_problem_json(
    new_tenant: Callable[..., Tenant], body: object
) -> None:
    admin = new_tenant(ADMIN)
    response = admin.client.put(
        PATH, content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert_problem(response, 422)
    assert admin.client.get(PATH).json()["days"] is None


def test_bad_dry_run_flag_is_422(new_tenant: Callable[..., Tenant]) -> None:
    admin = new_tenant(ADMIN)
    assert_problem(admin.client.put(PATH, json={"days": 3}, params={"dry_run": "maybe"}), 422)


def test_only_an_administrator_may_read_or_set_the_retention(
    new_tenant: Callable[..., Tenant],
) -> None:
    everyone = new_tenant((*DEFAULT_SCOPES, Scope.TOKENS_ADMIN))
    assert_problem(everyone.client.get(PATH), 403)
    assert_problem(everyone.client.put(PATH, json={"days": 30}), 403)
    # settings:admin is granted only by name: a token made with the default scopes lacks it.
    assert Scope.SETTINGS_ADMIN not in DEFAULT_SCOPES


def test_the_cli_dry_run_counts_per_tenant_and_the_enforcement_erases(
    server: Server, new_tenant: Callable[..., Tenant], settings_env: dict[str, str]
) -> None:
    admin = new_tenant(ADMIN)
    _calls(server.settings, admin.id, 20, 20, 1)
    assert admin.client.put(PATH, json={"days": 7}).status_code == 200
    tenant = ["--tenant", str(admin.id), "--json"]
    dry = kalimera(settings_env, "retention", "enforce", "--dry-run", *tenant)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) == [{"tenant_id": str(admin.id), "days": 7, "conversations": 2}]
    assert _left(server.settings, admin.id) == 3
    done = kalimera(settings_env, "retention", "enforce", *tenant)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["conversations"] == 2
    assert _left(server.settings, admin.id) == 1


def test_an_administrator_reads_the_erasure_log_without_personal_data(
    server: Server, new_tenant: Callable[..., Tenant]
) -> None:
    admin = new_tenant((*ADMIN, Scope.AGENTS_RUNTIME))
    _, conversation_id, _ = _call(server, admin)
    assert admin.client.delete(f"/kalimera/conversations/{conversation_id}").status_code == 204
    _calls(server.settings, admin.id, 9, 9)
    assert admin.client.put(PATH, json={"days": 3}).status_code == 200
    _enforce(server.settings, admin.id)

    log = admin.client.get("/kalimera/settings/erasures")
    assert log.status_code == 200, log.text
    items = log.json()["items"]
    assert [(e["reason"], e["conversations"], e["recordings"]) for e in items] == [
        ("retention", 2, 0),
        ("api", 1, 2),
    ]
    assert items[0]["token_id"] is None
    assert items[1]["token_id"] is not None
    assert set(items[0]) == {"reason", "token_id", "conversations", "recordings", "erased_at"}
    assert conversation_id not in log.text
    assert (
        len(admin.client.get("/kalimera/settings/erasures", params={"limit": 1}).json()["items"])
        == 1
    )
    assert_problem(admin.client.get("/kalimera/settings/erasures", params={"limit": 0}), 422)
    others = new_tenant(ADMIN)
    assert others.client.get("/kalimera/settings/erasures").json() == {"items": []}
    everyone = new_tenant()
    assert_problem(everyone.client.get("/kalimera/settings/erasures"), 403)
