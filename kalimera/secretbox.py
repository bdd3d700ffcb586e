"""AES-256-GCM for secrets at rest: an agent's secret fields, a webhook endpoint's signing secret.

A value (any JSON value) is stored as ``enc:v1:<key id>:<base64 nonce + ciphertext>``, bound by
associated data to what owns it (its tenant and agent, or endpoint), so a ciphertext copied
elsewhere does not decrypt. ``KALIMERA_ENCRYPTION_KEY`` encrypts; ``KALIMERA_ENCRYPTION_KEY_OLD``
still decrypts during a key rotation.
"""

from __future__ import annotations

import base64
import hashlib
import os
from functools import lru_cache
from typing import Any, TypeVar

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kalimera.settings import Settings, decode_key

PREFIX = "enc:v1:"
NONCE_BYTES = 12


class UndecryptableSecret(RuntimeError):
    """A stored secret does not decrypt with the configured keys (a key was dropped too soon)."""


class Cipher:
    """AES-256-GCM with the current key, and the old key kept for decrypting during rotation."""

    def __init__(self, key: bytes, old_key: bytes | None = None) -> None:
        self.key_id = _key_id(key)
        self._current = AESGCM(key)
        self._keys = {self.key_id: self._current}
        if old_key is not None:
            self._keys.setdefault(_key_id(old_key), AESGCM(old_key))

    def encrypt(self, value: Any, aad: bytes) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._current.encrypt(nonce, orjson.dumps(value), aad)
        return f"{PREFIX}{self.key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, aad: bytes) -> Any:
        key_id, _, payload = token.removeprefix(PREFIX).partition(":")
        aead = self._keys.get(key_id)
        if not token.startswith(PREFIX) or aead is None:
            raise UndecryptableSecret("no configured key matches a stored secret")
        raw = base64.b64decode(payload)
        try:
            return orjson.loads(aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad))
        except InvalidTag:
            raise UndecryptableSecret("a stored secret failed authentication") from None

    def is_current(self, token: str) -> bool:
        return token.startswith(f"{PREFIX}{self.key_id}:")


def _key_id(key: bytes) -> str:
    # Names the key without revealing it: 32 bits of a hash of a 256-bit random key.
    return hashlib.sha256(b"kalimera-key-id" + key).hexdigest()[:8]


C = TypeVar("C", bound=Cipher)


@lru_cache(maxsize=8)
def _cipher(kind: Any, key: str, old_key: str | None) -> Cipher:
    return kind(
        decode_key(key, "KALIMERA_ENCRYPTION_KEY"),
        decode_key(old_key, "KALIMERA_ENCRYPTION_KEY_OLD") if old_key else None,
    )


def cipher(settings: Settings, kind: type[C] = Cipher) -> C:  # type: ignore[assignment]
    """The process's cipher for these settings (built once per kind)."""
    assert settings.encryption_key is not None
    old = settings.encryption_key_old
    built = _cipher(
        kind,  # type: ignore[arg-type]
        settings.encryption_key.get_secret_value(),
        old and old.get_secret_value(),
    )
    assert isinstance(built, kind)
    return built
