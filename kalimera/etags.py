"""Versions as ETags: what a read answers in ``ETag`` and what a write's ``If-Match`` names.

Every versioned resource (an agent, an agent's analysis plan, a contact, a conversation) uses
these, so a client treats them all alike: the tag is the version in quotes, ``*`` or no header
means "whatever is there", and a tag that is not one of ours never matches (the write answers
412, never a 500). A representation that carries signed URLs adds their signing window after a
dash (``"7-5930001"``): a read's ``If-None-Match`` compares the whole tag (a copy whose URLs
expire is not current), a write's ``If-Match`` the version before the dash.
"""


def etag(version: int, variant: int | None = None) -> str:
    return f'"{version}"' if variant is None else f'"{version}-{variant}"'


def none_match(header: str | None, tag: str) -> bool:
    """Whether an ``If-None-Match`` names ``tag`` (or ``*``): the client's copy is current and
    the read answers 304. Weak and strong tags compare alike, as RFC 9110 says for GET."""
    if header is None:
        return False
    names = {value.strip().removeprefix("W/") for value in header.split(",")}
    return "*" in names or tag in names


def parse_if_match(header: str | None) -> int | None:
    """The version an ``If-Match`` names; None when absent or ``*``; -1 (never stored) when it
    is not one of our ETags, so the write answers 412."""
    if header is None or header.strip() == "*":
        return None
    value = header.strip().removeprefix("W/").strip('"').split("-", 1)[0]
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else -1
