"""A crash between the commit that asks for an analysis and the relay's send loses nothing: the
API process is killed with SIGKILL while its after-commit relay waits on the queue, and the
sweeper sends the request once the lease of the dead relay has run out."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_token
from tests.support.analysis import drain_with, say
from tests.support.calls import Call, query
from tests.support.outages import start_app_with_hung_queues

pytestmark = pytest.mark.slow


def _claimed(settings: object, conversation_id: uuid.UUID) -> list[dict[str, object]]:
    return query(
        settings,  # type: ignore[arg-type]
        "SELECT reason, available_at > now() AS claimed FROM kalimera_analysis_outbox"
        " WHERE conversation_id = %(c)s",
        {"c": conversation_id},
    )


def test_a_sigkill_between_the_commit_and_the_send_loses_no_request(
    call: Call, settings_env: dict[str, str], blackhole: int, tmp_path: Path
) -> None:
    say(call, [("input", "Γεια σας, θα ήθελα ένα τραπέζι για δύο.")], final=False)
    # The relay that follows the PATCH's commit waits on the hung queue; the process dies there.
    port, server = start_app_with_hung_queues(settings_env, blackhole, tmp_path / "server.log")
    try:
        token = make_token(call.settings, call.tenant.id)
        url = f"http://127.0.0.1:{port}/kalimera/conversations/{call.conversation_id}"

        def end() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server dies under it
                httpx.patch(
                    url,
                    json={"status": "Completed"},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=60,
                )

        patch = threading.Thread(target=end)
        patch.start()
        deadline = time.monotonic() + 30
        while not _claimed(call.settings, call.conversation_id):
            assert time.monotonic() < deadline, "the end was not committed"
            time.sleep(0.05)
        # Committed, claimed by the relay, not sent: kill it there.
        assert _claimed(call.settings, call.conversation_id) == [
            {"reason": "ended", "claimed": True}
        ]
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        patch.join()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    row = call.conversation()
    assert row is not None
    assert (row["status"], row["analysis_status"]) == ("Completed", "pending")

    # While the dead relay's lease lasts the sweeper leaves the row alone...
    drain_with(call.settings)
    assert _claimed(call.settings, call.conversation_id) == [{"reason": "ended", "claimed": True}]
    # ...and once it has run out (a minute: moved here instead of waited for), sends it.
    query(
        call.settings,
        "UPDATE kalimera_analysis_outbox SET available_at = now() WHERE conversation_id = %(c)s"
        " RETURNING id",
        {"c": call.conversation_id},
    )
    drain_with(call.settings)
    assert _claimed(call.settings, call.conversation_id) == []
    row = call.conversation()
    assert row is not None
    assert row["analysis_status"] in ("done", "skipped")
    assert row["analysis"]["plan_version"] == 0
