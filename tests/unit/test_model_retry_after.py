"""How long the model client waits when a server asks it to: ``retry-after-ms`` (Azure OpenAI)
before ``Retry-After``, in seconds or as an HTTP date; nothing readable is no request."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from kalimera.llm import retry_after


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "30"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
        ({}, None),
        ({"retry-after": "whenever"}, None),
        ({"retry-after": "-5"}, None),
    ],
)
def test_the_wait_a_server_asks_for(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after(headers) == seconds


def test_an_http_date_is_the_time_until_then() -> None:
    wait = retry_after({"retry-after": formatdate(time.time() + 30, usegmt=True)})
    assert wait is not None
    assert 28 <= wait <= 30
    assert retry_after({"retry-after": formatdate(time.time() - 30, usegmt=True)}) is None
