"""Write-only secrets: which fields are secret, AES-GCM at rest, masking, key rotation.

A field is secret when its name, at any depth and ignoring case, ``_`` and ``-``, contains one of
``SECRET_WORDS`` (or a section marks it, ``sections.EXTRA_SECRETS``). A secret's value (any JSON
value) is stored as ``enc:v1:<key id>:<base64 nonce + ciphertext>``, bound to its tenant and agent
as associated data, so a ciphertext copied to another agent does not decrypt. Responses show
``MASK`` in its place; sending ``MASK`` back keeps the stored value (done in SQL, see the
``kalimera_keep_masked`` function of the agents migration).
"""

import re
import uuid
from collections.abc import Callable
from typing import Any

from kalimera import secretbox
from kalimera.agents.sections import EXTRA_SECRETS
from kalimera.secretbox import PREFIX, UndecryptableSecret
from kalimera.settings import Settings

__all__ = ["PREFIX", "Cipher", "UndecryptableSecret", "cipher"]

MASK = "********"
SECRET_WORDS = ("key", "secret", "password", "token", "connectionstring")
# A field naming where something is sent: a secret sent back masked stays only while these stay.
DESTINATION_WORDS = frozenset({"endpoint", "url", "uri", "host", "hostname"})
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z]|[^A-Za-z]|$)|[A-Z]?[a-z]+")

Document = dict[str, Any]


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


class Cipher(secretbox.Cipher):
    """The secret box, over an agent's documents: every secret field sealed or opened."""

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


def cipher(settings: Settings) -> Cipher:
    """The process's cipher of agent documents for these settings (built once)."""
    return secretbox.cipher(settings, Cipher)
