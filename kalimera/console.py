"""The operator console's files (``console/``, built by npm into ``console/dist``), served at
``/kalimera/console/`` from the API's own origin, so the page calls the API without CORS and its
Content-Security-Policy can stay ``default-src 'self'``.

The build is made by ``make run`` / ``make test``; where it is absent (a checkout nobody built,
or a deployment that left it out) the console answers 404 problem+json saying so, and the API is
unaffected. ``index.html`` is never cached (it names the current build's files); the files under
``assets/`` carry a content hash in their names, so they are cached for a year.
"""

import re
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from kalimera.problems import Problem

PREFIX = "/kalimera/console"
DIST = Path(__file__).resolve().parent.parent / "console" / "dist"
# A hashed asset name as console/build.mjs writes it: no folders, no dot-files.
_ASSET = re.compile(r"^[A-Za-z0-9_-]+-[A-Z0-9]{8}\.(js|css)$")
_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}
NOT_BUILT = "The console is not built here: `make run` (or `make test`) builds it"

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def policy(media_origin: str | None) -> str:
    """The page's Content-Security-Policy: everything from this origin, nothing inline; audio
    also from the blob store that signs the turns' URLs (another origin, Azurite locally)."""
    media = f"'self' {media_origin}" if media_origin else "'self'"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"media-src {media}; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


def _headers(request: Request) -> dict[str, str]:
    state = request.app.state
    csp = getattr(state, "console_csp", None)
    if csp is None:
        parts = urlsplit(state.services.blobs.url)
        origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None
        csp = state.console_csp = policy(origin)
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


@router.get("")
async def console_root() -> RedirectResponse:
    """The folder's address without its slash: the page's relative asset paths need it. The
    Location is relative (``console/``), so it also holds behind API Management, where the page
    lives under the gateway's API path (``/v1/kalimera/console/``, infra/README.md)."""
    return RedirectResponse(f"{PREFIX.rsplit('/', 1)[1]}/", status_code=308)


@router.get("/")
async def console_index(request: Request) -> Response:
    index = DIST / "index.html"
    if not index.is_file():
        raise Problem(404, NOT_BUILT)
    return FileResponse(
        index,
        media_type="text/html; charset=utf-8",
        headers={**_headers(request), "Cache-Control": "no-cache"},
    )


@router.get("/assets/{name}")
async def console_asset(name: str, request: Request) -> Response:
    """A built file; its gzip twin (written by the build) when the client accepts gzip."""
    match = _ASSET.match(name)
    path = DIST / "assets" / name
    if match is None or not path.is_file():
        raise Problem(404, "No such console file")
    headers = {**_headers(request), "Cache-Control": "public, max-age=31536000, immutable"}
    headers["Vary"] = "Accept-Encoding"
    zipped = path.with_name(name + ".gz")
    if "gzip" in request.headers.get("accept-encoding", "") and zipped.is_file():
        headers["Content-Encoding"] = "gzip"
        path = zipped
    return FileResponse(path, media_type=_TYPES[match.group(1)], headers=headers)
