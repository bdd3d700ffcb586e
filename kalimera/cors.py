"""Cross-origin requests from a browser console on its own origin (``KALIMERA_CORS_ORIGINS``).

Exact origins only, none by default: the API is called with a Bearer token, never a cookie, so
credentials are not allowed and a wildcard would add nothing but risk. The same rule is API
Management's (``infra/apim/cors.xml``, built from these constants; a test keeps the two equal):
on Azure APIM answers the browser and the app's own list stays empty, so no response carries the
headers twice.
"""

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# What a console sends: the token, JSON, the preconditions and the idempotency key.
HEADERS = ("Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key")
# What it may read of an answer besides the simple headers.
EXPOSED = ("ETag", "Location", "Retry-After", "X-Request-Id", "Idempotent-Replayed")
MAX_AGE = 600  # seconds a browser may keep a preflight's answer


def install(app: FastAPI, origins: tuple[str, ...]) -> None:
    """Answer preflights and mark answers for ``origins``; call it last, so it wraps every other
    middleware and a refusal (401, 413, 429) is readable by the console too."""
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,  # type: ignore[arg-type]
        allow_origins=list(origins),
        allow_methods=list(METHODS),
        allow_headers=list(HEADERS),
        expose_headers=list(EXPOSED),
        allow_credentials=False,
        max_age=MAX_AGE,
    )
