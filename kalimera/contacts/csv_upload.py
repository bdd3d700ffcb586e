"""The HTTP edge of the CSV import: the file's bytes out of a request, for ``csv_import``.

A client sends the file as the body (``text/csv`` and its kin) or as the file part of a
multipart form. The whole body's size is the body guard's (``kalimera.limits``, with the limit
``csv_limit`` gives it, before a byte is read); the file's own cap is ``csv_import.file_cap``.
"""

from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request

from kalimera.contacts.csv_import import MAX_BYTES, MAX_ROWS, TOO_LARGE, file_cap
from kalimera.errors import Malformed, Unsupported
from kalimera.sizecap import SizeCap, read_capped

CSV_TYPES = frozenset({"text/csv", "application/csv", "text/plain", "application/vnd.ms-excel"})
# Room for the multipart envelope around a file of MAX_BYTES.
MULTIPART_SLACK = 64 * 1024

REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": (
        "A CSV file, UTF-8 with or without BOM, comma-, semicolon- or tab-separated, with a "
        "header row of field names (first_name and last_name required; id, created_at and "
        f"updated_at ignored); at most {MAX_ROWS:,} rows and {MAX_BYTES // 2**20} MiB. Sent as "
        "the body, or as the file part of a multipart form."
    ),
    "content": {
        "text/csv": {"schema": {"type": "string"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
    },
}


def csv_limit(content_type: str) -> int:
    """The body guard's limit for this route: the file, plus room for a form around it."""
    form = content_type.startswith("multipart/")
    return MAX_BYTES + (MULTIPART_SLACK if form else 0)


async def read_upload(request: Request) -> bytes:
    """The CSV bytes of an upload: the body itself, or the file part of a multipart form."""
    media_type, _, params = request.headers.get("content-type", "").partition(";")
    media_type = media_type.strip().lower()
    charset = _param(params, "charset")
    if charset not in (None, "utf-8", "utf8"):
        raise Unsupported("The file must be UTF-8")
    if media_type in CSV_TYPES:
        return await _read(request)
    if media_type == "multipart/form-data":
        return await _file_part(request)
    raise Unsupported("Send the file as text/csv, or as the file part of multipart/form-data")


def _param(params: str, name: str) -> str | None:
    for part in params.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"').lower()
    return None


async def _read(request: Request) -> bytes:
    """The request body, under the body guard's limit (the guard has refused a larger one
    already, by its length or as it streamed)."""
    content_type = request.headers.get("content-type", "").lower()
    cap = SizeCap(limit=csv_limit(content_type), detail=TOO_LARGE)
    try:
        return await read_capped(request.stream(), cap)
    except ClientDisconnect:
        raise Malformed("The upload ended before the whole file arrived") from None


async def _file_part(request: Request) -> bytes:
    body = await _read(request)
    sent = False

    async def replay() -> dict[str, Any]:
        # The bounded body, handed to Starlette's multipart parser as if it came from the client.
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=16)
    except Exception as exc:  # Starlette raises several kinds for a malformed form
        raise Malformed("The multipart form could not be read") from exc
    try:
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if not files:
            raise Malformed("No file part")
        return file_cap().take(await files[0].read())
    finally:
        await form.close()
