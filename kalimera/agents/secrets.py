"""Write-only secrets: which fields are secret, AES-GCM at rest, masking, key rotation.

A field is secret when its name, at any depth and ignoring case, ``_`` and ``-``, contains one of
``SECRET_WORDS`` (or a section marks it, ``sections.EXTRA_SECRETS``). A secret's value (any JSON
value) is stored as ``enc:v1:<key id>:<base64 nonce + ciphertext>``, bound to its tenant and agent
as associated data, so a ciphertext copied to another agent does not decrypt. Responses show
``MASK`` in its place; sending ``MASK`` back keeps the stored value (done in SQL, see the
``kalimera_keep_masked`` function of the agents migration).
"""

import base64
import hashlib
import os
import re
import uuid
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kalimera.agents.sections import EXTRA_SECRETS
from kalimera.settings import Settings, decode_key

MASK = "********"
SECRET_WORDS = ("key", "secret", "password", "token", "connectionstring")
# A field naming where something is sent: a secret sent back masked stays only while these stay.
DESTINATION_WORDS = frozenset({"endpoint", "url", "uri", "host", "hostname"})
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z]|[^A-Za-z]|$)|[A-Z]?[a-z]+")
PREFIX = "enc:v1:"
NONCE_BYTES = 12

Document = dict[str, Any]


class UndecryptableSecret(RuntimeError):
    """A stored secret does not decrypt with the configured keys (a key was dropped too soon)."""


def is_secret_name(name: str, extra: frozenset[str] = frozenset()) -> bool:
    lowered = name.lower().replace("_", "").replace("-", "")
    return lowered in extra or any(word in lowered for word in SECRET_WORDS)


def is_destination_name(name: str) -> bool:
    """``Endpoint``, ``SpeechEndpoint``, ``FileUrl``, ``serverUrl``, ``BaseURI``, ``host``..."""
    if any(word.lower() in DESTINATION_WORDS for word in _WORDS.findall(name)):
        return True
    return name.lower().endswith(tuple(DESTINATION_WORDS))


def masked_secrets_redirected(
    new: Any, old: Any, extra: frozenset[str] = frozenset()
) -> list[tuple[list[str | int], str]]:
    """Each secret ``new`` sends back masked while a destination beside it (in its object or
    an enclosing one) differs from ``old``'s: (the secret's path, the changed field's path).

    Keeping such a secret would send the stored key to a place it was never sent to, so the
    caller refuses the write until the secret is entered again with the new destination.
    """
    found: list[tuple[list[str | int], str]] = []
    _redirected(new, old, [], None, extra, found)
    return found


def _redirected(
    new: Any,
    old: Any,
    path: list[str | int],
    changed: str | None,
    extra: frozenset[str],
    found: list[tuple[list[str | int], str]],
) -> None:
    if isinstance(new, list):
        old_list = old if isinstance(old, list) else []
        for i, item in enumerate(new):
            before = old_list[i] if i < len(old_list) else None
            _redirected(item, before, [*path, i], changed, frozenset(), found)
        return
    if not isinstance(new, dict):
        return
    old_dict = old if isinstance(old, dict) else {}
    if changed is None:
        for name in (*new, *(k for k in old_dict if k not in new)):
            if (
                is_destination_name(name)
                and not is_secret_name(name, extra)
                and new.get(name) != old_dict.get(name)
            ):
                changed = ".".join(str(p) for p in [*path, name])
                break
    for name, value in new.items():
        if value == MASK and is_secret_name(name, extra):
            if changed is not None:
                found.append(([*path, name], changed))
        else:
            _redirected(value, old_dict.get(name), [*path, name], changed, frozenset(), found)


def map_secrets(value: Any, fn: Callable[[Any], Any], extra: frozenset[str] = frozenset()) -> Any:
    """A copy of ``value`` with ``fn`` applied to every set secret (not null, not ``""``)."""
    if isinstance(value, dict):
        return {
            k: fn(v)
            if v is not None and v != "" and is_secret_name(k, extra)
            else map_secrets(v, fn)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [map_secrets(v, fn) for v in value]
    return value


def map_document(document: Document, fn: Callable[[Any], Any]) -> Document:
    """``map_secrets`` over a document keyed by section name."""
    return {
        name: map_secrets(value, fn, EXTRA_SECRETS.get(name, frozenset()))
        for name, value in document.items()
    }


def mask(document: Document) -> Document:
    return map_document(document, lambda _: MASK)


def associated_data(tenant_id: uuid.UUID, agent_id: uuid.UUID) -> bytes:
    return tenant_id.bytes + agent_id.bytes


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

    def seal(self, document: Document, aad: bytes) -> Document:
        """Encrypt every secret a client sent; ``MASK`` stays for SQL to resolve."""
        return map_document(document, lambda v: v if v == MASK else self.encrypt(v, aad))

    def unseal(self, document: Document, aad: bytes) -> Document:
        """Decrypt every stored secret (for the runtime export only)."""
        return map_document(document, lambda v: self.decrypt(v, aad) if isinstance(v, str) else v)

    def reseal(self, document: Document, aad: bytes) -> tuple[Document, bool]:
        """Re-encrypt with the current key what an older key sealed; True when anything changed."""
        changed = False

        def rotate(value: Any) -> Any:
            nonlocal changed
            if not isinstance(value, str) or self.is_current(value):
                return value
            changed = True
            return self.encrypt(self.decrypt(value, aad), aad)

        return map_document(document, rotate), changed


def _key_id(key: bytes) -> str:
    # Names the key without revealing it: 32 bits of a hash of a 256-bit random key.
    return hashlib.sha256(b"kalimera-key-id" + key).hexdigest()[:8]


@lru_cache(maxsize=4)
def _cipher(key: str, old_key: str | None) -> Cipher:
    return Cipher(
        decode_key(key, "KALIMERA_ENCRYPTION_KEY"),
        decode_key(old_key, "KALIMERA_ENCRYPTION_KEY_OLD") if old_key else None,
    )


def cipher(settings: Settings) -> Cipher:
    """The process's cipher for these settings (built once)."""
    assert settings.encryption_key is not None
    old = settings.encryption_key_old
    return _cipher(settings.encryption_key.get_secret_value(), old and old.get_secret_value())
