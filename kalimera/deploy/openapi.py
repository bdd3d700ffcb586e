"""The OpenAPI document API Management imports, rendered the same way every time.

``infra/apim/openapi.json`` is this document, committed: ``infra/app/apim.bicep`` loads it with
``loadJsonContent`` (the code is not deployed yet when APIM is provisioned, so APIM cannot fetch
it from the app). Not ``loadTextContent``: that reads at most 131,072 characters, which the
document outgrew once every body had an example; ``loadJsonContent`` reads 1,048,576.
``tests/infra`` fails when the committed file differs from what the app serves.
"""

import base64
import json
from pathlib import Path
from typing import Any

from kalimera.settings import load_settings

DOCUMENT = Path(__file__).resolve().parents[2] / "infra" / "apim" / "openapi.json"
COMMAND = "kalimera openapi --output infra/apim/openapi.json"
# Bicep's loadJsonContent reads at most this many characters.
LOAD_JSON_LIMIT = 1_048_576


def served_document() -> dict[str, Any]:
    """What ``GET /kalimera/openapi.json`` answers, built without connecting to anything."""
    from kalimera.app import create_app

    settings = load_settings(
        KALIMERA_ENV="development",
        # Not a secret: a fixed placeholder so rendering never writes a key under .local/.
        KALIMERA_ENCRYPTION_KEY=base64.b64encode(b"\0" * 32).decode(),
    )
    return create_app(settings).openapi()


def render(document: dict[str, Any]) -> str:
    """Compact JSON (APIM imports it inline, within loadJsonContent's size limit), one newline."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"
