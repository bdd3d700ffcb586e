"""Acceptance: the app starts and serves with only the settings infra/ sets, no keys anywhere.

The Function App's settings are read from infra/app/function.bicep; each service endpoint is
swapped for the local one (Azurite over HTTPS with OAuth, the test Postgres, the test Redis with
an ACL user named by the identity's object id), every other value is what Azure would render.
Entra is the one fake: tokens are issued by tests/infra/fake_entra.py."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from kalimera.dev.localstack import (
    LocalStack,
    LocalStackError,
    _azurite_script,
    _three_free_ports,
    wait_for_port,
)
from kalimera.entra import POSTGRES_SCOPE, REDIS_SCOPE
from tests.infra.bicep import app_settings
from tests.infra.fake_entra import OBJECT_ID, jwt
from tests.infra.fresh import fresh_python
from tests.infra.test_app_settings import CLIENT_ID, resolved

STORAGE_SCOPE = "https://storage.azure.com/.default"
EPOCH = int(time.time())


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (Azurite accepts bearer tokens over HTTPS only)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def oauth_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A private Azurite over HTTPS that accepts only bearer tokens: (account URL, CA file)."""
    root = tmp_path_factory.mktemp("azurite-oauth")
    cert, key = self_signed(root)
    with LocalStack(root) as local:
        # A free port may be taken meanwhile (a client's ephemeral port): try fresh ones.
        for attempt in range(5):
            port = _three_free_ports()
            proc = local._spawn(
                "azurite-oauth",
                [
                    "node", str(_azurite_script()), "--location", str(root / "data"),
                    "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1",
                    "--tableHost", "127.0.0.1", "--blobPort", str(port),
                    "--queuePort", str(port + 1), "--tablePort", str(port + 2),
                    "--oauth", "basic", "--cert", str(cert), "--key", str(key),
                    "--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry",
                ],
                root / "azurite.log",
            )  # fmt: skip
            try:
                wait_for_port(port, seconds=30, proc=proc)
                wait_for_port(port + 2, seconds=30, proc=proc)
                break
            except LocalStackError:
                if attempt == 4:
                    raise
        yield f"https://127.0.0.1:{port}", cert


@pytest.fixture(scope="module")
def redis_entra_user(redis_url: str) -> Iterator[str]:
    """An ACL user named by the identity's object id whose password is its Entra token."""
    admin = Redis.from_url(redis_url)
    token = jwt(REDIS_SCOPE, expires_on=EPOCH + 3600)
    admin.execute_command("ACL", "SETUSER", OBJECT_ID, "on", f">{token}", "~*", "&*", "+@all")
    try:
        yield redis_url
    finally:
        admin.execute_command("ACL", "DELUSER", OBJECT_ID)
        admin.close()


def azure_environment(
    storage: str, database_url: str, redis_url: str, ca_file: Path
) -> dict[str, str]:
    endpoints = {
        "blobServiceUri": f"{storage}/devstoreaccount1",
        "queueServiceUri": f"{storage.rsplit(':', 1)[0]}:{int(storage.rsplit(':', 1)[1]) + 1}"
        "/devstoreaccount1",
        "tableServiceUri": f"{storage.rsplit(':', 1)[0]}:{int(storage.rsplit(':', 1)[1]) + 2}"
        "/devstoreaccount1",
    }
    env = {}
    for name, expression in app_settings().items():
        suffix = name.rsplit("__", 1)[-1]
        if suffix in endpoints:
            env[name] = endpoints[suffix]
        elif name == "DATABASE_URL":
            env[name] = database_url
        elif name == "REDIS_URL":
            env[name] = redis_url
        else:
            env[name] = resolved(name, expression)
    return env


def test_the_app_serves_with_only_the_settings_infra_sets(
    oauth_azurite: tuple[str, Path], database_url: str, redis_entra_user: str
) -> None:
    storage, ca_file = oauth_azurite
    env = azure_environment(storage, database_url, redis_entra_user, ca_file)
    assert not any("AccountKey" in v or "password" in v.lower() for v in env.values())
    assert "KALIMERA_STORAGE" not in env  # no connection string: identity-based only
    line = fresh_python(
        "-m",
        "tests.infra.azure_like_app",
        env={
            **env,
            # The test machine trusts Azurite's certificate as Azure's clients trust Azure's.
            "SSL_CERT_FILE": str(ca_file),
            "FAKE_ENTRA_EPOCH": str(EPOCH),
        },
    )
    outcome = json.loads(line)
    assert outcome["health"] == {
        "status": "ok",
        "checks": {"postgres": "ok", "redis": "ok", "storage": "ok"},
    }
    assert outcome["status"] == 200
    assert outcome["scopes"] == sorted({POSTGRES_SCOPE, REDIS_SCOPE, STORAGE_SCOPE})
    assert outcome["client_ids"] == [CLIENT_ID]
