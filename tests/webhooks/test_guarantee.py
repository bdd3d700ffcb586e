"""Nothing committed is lost: a receiver down then up gets every event (duplicates share their
``webhook-id``), a process killed between the commit and the send loses nothing, and a worker
in production refuses local addresses at the attempt, by literal IP and by name."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from kalimera.settings import Settings
from tests.conftest import Tenant
from tests.support.calls import query
from tests.support.outages import blackhole, start_app_with_hung_queues  # noqa: F401
from tests.support.receiver import Behaviour, Receiver
from tests.webhooks.conftest import all_settled, create_endpoint, deliveries, drain, start_call

CALLS = 10


@pytest.mark.usefixtures("fast_retries")
def test_a_receiver_down_then_up_gets_every_event_and_duplicates_share_their_id(
    dev_tenant: Tenant, dev_settings: Settings
) -> None:
    receiver = Receiver()  # not started: its port refuses connections
    endpoint = create_endpoint(dev_tenant, receiver.url)
    for _ in range(CALLS):
        conversation_id = start_call(dev_tenant)
        dev_tenant.client.patch(
            f"/kalimera/conversations/{conversation_id}", json={"status": "Completed"}
        )
    sent = 2 * CALLS  # started and ended
    # Down: every first attempt fails to connect, and is queued again.
    drain(
        dev_settings,
        lambda: all(d["attempts"] for d in deliveries(dev_tenant, endpoint["id"])),
        timeout=60,
    )
    assert all(d["status"] == "pending" for d in deliveries(dev_tenant, endpoint["id"]))
    # Up, and the first three answers are lost (recorded, then no answer within the timeout):
    # the receiver has those events, the sender does not know, and sends them again.
    receiver.behaviour = Behaviour(hang_first=3)
    receiver.start()
    try:
        drain(dev_settings, all_settled(dev_tenant, endpoint["id"]), timeout=90)
    finally:
        receiver.stop()
    log = deliveries(dev_tenant, endpoint["id"])
    assert len(log) == sent
    assert {d["status"] for d in log} == {"delivered"}
    ids = Counter(receiver.ids())
    duplicates = {i: n for i, n in ids.items() if n > 1}
    print(
        f"\nreceiver down then up: events sent {sent}, delivered {len(log)}, requests received "
        f"{len(receiver.received)}, distinct webhook-ids {len(ids)}, "
        f"duplicated ids {len(duplicates)} ({sum(duplicates.values()) - len(duplicates)} extra)"
    )
    assert len(ids) == sent
    assert len(duplicates) >= 1
    # A duplicate is the same message: the same id, the same event, valid signatures.
    verifier = Webhook(endpoint["secret"])
    by_id: dict[str, set[str]] = {}
    for got in receiver.received:
        payload = verifier.verify(got.body, got.headers)
        by_id.setdefault(got.headers["webhook-id"], set()).add(
            f"{payload['type']} {payload['data']['id']}"
        )
    assert all(len(events) == 1 for events in by_id.values())


def test_a_sigkill_between_the_commit_and_the_send_loses_no_event(
    dev_tenant: Tenant,
    dev_settings: Settings,
    settings_env: dict[str, str],
    blackhole: int,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    receiver = Receiver().start()
    try:
        endpoint = create_endpoint(dev_tenant, receiver.url)
        agent = dev_tenant.client.post("/kalimera/ai-agent", json={"name": "A", "type": "inbound"})
        # The relay after the commit waits on the hung queue, and the process dies there.
        port, server = start_app_with_hung_queues(settings_env, blackhole, tmp_path / "server.log")
        try:

            def start() -> None:
                with contextlib.suppress(httpx.HTTPError):  # the server dies under it
                    httpx.post(
                        f"http://127.0.0.1:{port}/kalimera/conversations",
                        json={"agent_id": agent.json()["id"], "profile_type": "inbound"},
                        headers={"Authorization": f"Bearer {dev_tenant.token}"},
                        timeout=60,
                    )

            request = threading.Thread(target=start)
            request.start()
            deadline = time.monotonic() + 30
            while not claimed(dev_settings, dev_tenant):
                assert time.monotonic() < deadline, "the start was not committed"
                time.sleep(0.05)
            # Committed, claimed by the relay, not sent: kill it there.
            os.kill(server.pid, signal.SIGKILL)
            server.wait()
            request.join()
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        assert receiver.received == []
        # The dead relay's lease (a minute) is moved here instead of waited for.
        query(
            dev_settings,
            "UPDATE kalimera_webhook_outbox SET available_at = now() WHERE tenant_id = %(t)s"
            " RETURNING id",
            {"t": dev_tenant.id},
        )
        drain(dev_settings, all_settled(dev_tenant, endpoint["id"]))
        (delivered,) = deliveries(dev_tenant, endpoint["id"])
        assert delivered["status"] == "delivered"
        (got,) = receiver.received
        assert Webhook(endpoint["secret"]).verify(got.body, got.headers)["type"] == (
            "conversation.started"
        )
    finally:
        receiver.stop()


def claimed(settings: Settings, tenant: Tenant) -> bool:
    return bool(
        query(
            settings,
            "SELECT 1 FROM kalimera_webhook_outbox WHERE tenant_id = %(t)s"
            " AND available_at > now()",
            {"t": tenant.id},
        )
    )


def test_a_lost_message_is_queued_again_by_the_sweeper(
    dev_tenant: Tenant, dev_settings: Settings, receiver: Receiver
) -> None:
    """A delivery whose message the queue gave up on (poisoned while Postgres was down) is
    found pending and overdue with nothing queued, and queued again."""
    endpoint = create_endpoint(dev_tenant, receiver.url)
    dev_tenant.client.post(f"/kalimera/webhooks/{endpoint['id']}/test")
    query(  # the message is gone, and its delivery long overdue
        dev_settings,
        "WITH gone AS (DELETE FROM kalimera_webhook_outbox WHERE tenant_id = %(t)s RETURNING 1)"
        " UPDATE kalimera_webhook_deliveries SET generation = generation + 1,"
        " next_attempt_at = now() - interval '1 hour' WHERE tenant_id = %(t)s RETURNING id",
        {"t": dev_tenant.id},
    )
    drain(dev_settings, all_settled(dev_tenant, endpoint["id"]))
    assert len(receiver.received) == 1


def test_a_worker_in_production_refuses_local_receivers_by_address_and_by_name(
    dev_tenant: Tenant, dev_settings: Settings, settings: Settings, receiver: Receiver
) -> None:
    """Endpoints made in development (local allowed) meet a production worker: each attempt
    checks the address again, and refuses."""
    by_ip = create_endpoint(dev_tenant, receiver.url)
    by_name = create_endpoint(dev_tenant, f"https://localhost:{receiver.port}/hook")
    v6 = create_endpoint(dev_tenant, f"https://[::1]:{receiver.port}/hook")
    for endpoint in (by_ip, by_name, v6):
        dev_tenant.client.post(f"/kalimera/webhooks/{endpoint['id']}/test")

    def attempted() -> bool:
        return all(deliveries(dev_tenant, e["id"])[0]["attempts"] for e in (by_ip, by_name, v6))

    drain(settings, attempted)  # the production settings
    errors = [
        deliveries(dev_tenant, e["id"])[0]["attempts"][0]["error"] for e in (by_ip, by_name, v6)
    ]
    assert errors[0] == "refused: must be https"
    assert errors[1].startswith("refused: localhost resolves to an address that is not public")
    assert errors[2].startswith("refused: ::1 resolves to an address that is not public")
    assert receiver.received == []
