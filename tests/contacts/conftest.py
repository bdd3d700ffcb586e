"""Helpers for the contacts tests."""

from typing import Any

import httpx

from tests.support.problems import assert_problem

URL = "/kalimera/contact"


def create(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    """A stored contact (names default to a fixed pair)."""
    body = {"first_name": "Maria", "last_name": "Papadopoulou", **fields}
    response = client.post(URL, json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def locs(response: httpx.Response, status: int) -> list[list[Any]]:
    """The ``errors[].loc`` of a problem answer with ``status``."""
    body = assert_problem(response, status)
    return [error["loc"] for error in body.get("errors", [])]  # type: ignore[attr-defined]
