"""Key rotation: the old key still decrypts, `kalimera secrets rotate` re-encrypts."""

import base64
import os
import secrets
import subprocess
import sys
import uuid

import httpx

from kalimera.auth import DEFAULT_SCOPES, Scope
from kalimera.settings import Settings
from tests.agents.conftest import create, planted, secret_body, stored_configuration
from tests.conftest import Server, make_token
from tests.support.settings import settings_with


def runtime_export(server: Server, token: str, agent_id: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}/kalimera/ai-agent/{agent_id}/runtime-config",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def key_ids(settings: Settings, agent_id: str) -> set[str]:
    stored = stored_configuration(settings, agent_id)
    return {part.split(":", 1)[0] for part in stored.split("enc:v1:")[1:]}


def test_rotation_keeps_secrets_readable_and_moves_them_to_the_new_key(
    settings: Settings, settings_env: dict[str, str]
) -> None:
    old_key = settings_env["KALIMERA_ENCRYPTION_KEY"]
    new_key = base64.b64encode(secrets.token_bytes(32)).decode()
    secret = planted()
    tenant_id = uuid.uuid4()
    token = make_token(settings, tenant_id, (*DEFAULT_SCOPES, Scope.AGENTS_RUNTIME))

    servers = {
        "old": Server(settings),
        "both": Server(
            settings_with(
                settings_env, KALIMERA_ENCRYPTION_KEY=new_key, KALIMERA_ENCRYPTION_KEY_OLD=old_key
            )
        ),
        "new": Server(settings_with(settings_env, KALIMERA_ENCRYPTION_KEY=new_key)),
    }
    for server in servers.values():
        server.start()
    try:
        with httpx.Client(
            base_url=servers["old"].url, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            agent_id = create(client, secret_body(secret))
        before = runtime_export(servers["old"], token, agent_id).json()
        assert before["Azure"]["SpeechKey"] == secret
        old_ids = key_ids(settings, agent_id)
        assert len(old_ids) == 1

        # With the new key current and the old one kept, everything still decrypts.
        assert runtime_export(servers["both"], token, agent_id).json() == before
        # The new key alone cannot read what the old key sealed: a clear 500, no secret.
        refused = runtime_export(servers["new"], token, agent_id)
        assert refused.status_code == 500
        assert "KALIMERA_ENCRYPTION_KEY_OLD" in refused.json()["detail"]
        assert secret not in refused.text

        env = {
            **os.environ,
            **settings_env,
            "KALIMERA_ENCRYPTION_KEY": new_key,
            "KALIMERA_ENCRYPTION_KEY_OLD": old_key,
        }
        done = subprocess.run(
            [sys.executable, "-m", "kalimera", "secrets", "rotate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "re-encrypted" in done.stderr
        assert secret not in done.stdout + done.stderr

        new_ids = key_ids(settings, agent_id)
        assert len(new_ids) == 1
        assert new_ids != old_ids
        assert runtime_export(servers["new"], token, agent_id).json() == before
        assert runtime_export(servers["both"], token, agent_id).json() == before
    finally:
        for server in servers.values():
            server.stop()
