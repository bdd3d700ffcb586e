"""The ``openai`` package takes over a second to import: with a model configured, startup
(``Services.warm``) imports the model client in a thread, so neither startup nor a request waits
for it, and without one nothing imports it."""

from __future__ import annotations

import json

from tests.infra.fresh import fresh_python

PROBE = """
import json, sys, threading, time
from kalimera.services import Services
from kalimera.settings import load_settings
services = Services(load_settings())
services.warm()
# Still importing when warm() returns: startup did not wait for it.
importing = any(t.name == "import-model-client" for t in threading.enumerate())
deadline = time.monotonic() + float(sys.argv[1])
# build_chat_model is the module's last definition: there, its import is complete.
def imported():
    return hasattr(sys.modules.get("kalimera.llm"), "build_chat_model")
while not imported() and time.monotonic() < deadline:
    time.sleep(0.01)
print(json.dumps({"importing": importing, "imported": imported(),
                  "openai": "openai" in sys.modules}))
"""
ENV = {"KALIMERA_ENV": "development", "PYTHONPATH": "."}


def test_a_configured_model_is_imported_in_the_background_at_startup() -> None:
    env = {**ENV, "KALIMERA_LLM_BASE_URL": "http://127.0.0.1:1/v1", "KALIMERA_LLM_MODEL": "m"}
    seen = json.loads(fresh_python("-c", PROBE, "30", env=env))
    assert seen["imported"]
    assert seen["openai"]
    assert seen["importing"]  # warm() returned while the import went on


def test_without_a_model_the_client_is_never_imported() -> None:
    seen = json.loads(fresh_python("-c", PROBE, "0.5", env=ENV))
    assert not seen["imported"]
    assert not seen["openai"]
    assert not seen["importing"]
