"""Fixtures for the offline infra checks: one checkov run per session, the indexed functions."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tests.infra.bicep import INFRA, ROOT
from tests.infra.fresh import fresh_python

CHECKOV = os.environ.get("KALIMERA_CHECKOV", str(ROOT / ".venv" / "checkov" / "bin" / "checkov"))

# Enough for function_app to import in production mode; nothing listens on these ports.
IMPORT_ENV = {
    "KALIMERA_ENV": "production",
    "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "KALIMERA_STORAGE__blobServiceUri": "https://acct.blob.core.windows.net/",
    "KALIMERA_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
}

_INDEX = """
import json, function_app
from azure.functions.decorators.utils import StringifyEnumJsonEncoder
functions = function_app.app.get_functions()
print(json.dumps({f.get_function_name(): f.get_dict_repr() for f in functions},
                 cls=StringifyEnumJsonEncoder))
"""


@pytest.fixture(scope="session")
def checkov_report() -> tuple[dict[str, Any], str]:
    """checkov over infra/ once (it takes ~30 s): its JSON report and its stderr."""
    if not os.path.exists(CHECKOV):
        pytest.fail(f"checkov is not installed at {CHECKOV}: run `make install`")
    result = subprocess.run(
        [CHECKOV, "-d", str(INFRA), "--framework", "bicep", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    report = json.loads(result.stdout)
    if isinstance(report, list):  # one entry per framework when several ran
        report = next(r for r in report if r.get("check_type") == "bicep")
    return report, result.stderr


@pytest.fixture(scope="session")
def indexed_functions() -> dict[str, dict[str, Any]]:
    """What the Functions worker indexes from function_app (name -> bindings), read in a fresh
    interpreter: ``get_functions()`` can be called once per app instance."""
    return json.loads(fresh_python("-c", _INDEX, env=IMPORT_ENV, timeout=60))  # type: ignore[no-any-return]
