"""The unit tier: tests that need no service (no Postgres, Redis, Azurite, no running app).

``make test-unit`` runs this folder alone in seconds; ``make test`` runs it with the rest. A test
here that asks, even indirectly, for the local stack is a test in the wrong folder: collection
stops and names it, rather than the tier quietly starting the services it exists to avoid.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    wrong = [
        item.nodeid
        for item in items
        if HERE in item.path.parents and "stack" in getattr(item, "fixturenames", ())
    ]
    if wrong:
        msg = f"unit tests may not use the local stack (move them out of tests/unit): {wrong}"
        raise pytest.UsageError(msg)
