"""Delivery to a real receiver (an HTTP server the test starts): Standard Webhooks headers and
signatures (verified with the ``standardwebhooks`` package), retries on the schedule, 410, a slow
receiver, a 10 MB answer, a redirect, the delivery log, retry and replay."""

from __future__ import annotations

import time

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from kalimera.settings import Settings
from tests.conftest import Tenant
from tests.support.calls import query
from tests.support.receiver import Behaviour, Receiver
from tests.webhooks.conftest import (
    TIMEOUT,
    all_settled,
    create_endpoint,
    deliveries,
    drain,
    start_call,
)


def test_each_event_is_posted_signed_as_standard_webhooks_says(
    dev_tenant: Tenant, dev_settings: Settings, receiver: Receiver
) -> None:
    endpoint = create_endpoint(dev_tenant, receiver.url)
    conversation_id = start_call(dev_tenant)
    dev_tenant.client.patch(
        f"/kalimera/conversations/{conversation_id}", json={"status": "Completed"}
    )
    drain(dev_settings, lambda: len(receiver.received) >= 2)
    verifier = Webhook(endpoint["secret"])
    types = []
    for got in receiver.received:
        assert got.headers["content-type"] == "application/json"
        assert got.headers["user-agent"] == "Kalimera-Webhooks/1"
        assert got.headers["webhook-id"].startswith("msg_")
        assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
        payload = verifier.verify(got.body, got.headers)
        assert set(payload) == {"type", "timestamp", "data"}
        assert payload["data"]["id"] == conversation_id
        assert "updated_at" in payload["data"]
        types.append(payload["type"])
    assert sorted(types) == ["conversation.ended", "conversation.started"]
    log = deliveries(dev_tenant, endpoint["id"])
    assert {d["status"] for d in log} == {"delivered"}
    assert {d["webhook_id"] for d in log} == set(receiver.ids())
    attempt = log[0]["attempts"][0]
    assert (attempt["status"], attempt["error"]) == (200, None)
    assert attempt["latency_ms"] >= 0


def test_during_a_rotation_both_secrets_verify(
    dev_tenant: Tenant, dev_settings: Settings, receiver: Receiver
) -> None:
    endpoint = create_endpoint(dev_tenant, receiver.url)
    rotated = dev_tenant.client.post(f"/kalimera/webhooks/{endpoint['id']}/rotate-secret").json()
    assert dev_tenant.client.post(f"/kalimera/webhooks/{endpoint['id']}/test").status_code == 202
    drain(dev_settings, lambda: len(receiver.received) >= 1)
    (got,) = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for secret in (endpoint["secret"], rotated["secret"]):
        payload = Webhook(secret).verify(got.body, got.headers)
        assert payload["type"] == "webhook.test"
    # Once the old secret has expired, one signature, the new secret's.
    query(
        dev_settings,
        "UPDATE kalimera_webhook_endpoints SET previous_secret_expires_at = now() - interval '1 s'"
        " WHERE id = %(id)s RETURNING id",
        {"id": endpoint["id"]},
    )
    dev_tenant.client.post(f"/kalimera/webhooks/{endpoint['id']}/test")
    drain(dev_settings, lambda: len(receiver.received) >= 2)
    last = receiver.received[-1]
    assert len(last.headers["webhook-signature"].split(" ")) == 1
    Webhook(rotated["secret"]).verify(last.body, last.headers)


@pytest.mark.usefixtures("fast_retries")
def test_a_500_is_retried_on_the_schedule_then_failed_and_retryable_with_the_same_id(
    dev_tenant: Tenant, dev_settings: Settings, receiver: Receiver
) -> None:
    receiver.behaviour = Behaviour(status=500)
    endpoint = create_endpoint(dev_tenant, receiver.url)
    dev_tenant.client.post(f"/kalimera/webhooks/{endpoint['id']}/test")
    drain(dev_settings, all_settled(dev_tenant, endpoint["id"]), timeout=60)
    (failed,) = deliveries(dev_tenant, endpoint["id"], status="failed")
    assert len(failed["attempts"]) == 8  # the first try and seven retries
    assert {a["status"] for a in failed["attempts"]} == {500}
    assert {a["error"] for a in failed["attempts"]} == {"HTTP 500"}
    assert len(set(receiver.ids())) == 1
    # The retry sends it again now, with the same webhook-id.
    receiver.behaviour = Behaviour(status=204)
    response = dev_tenant.client.post(
        f"/kalimera/webhooks/{endpoint['id']}/deliveries/{failed['id']}/retry"
    )
    assert response.status_code == 202
    drain(dev_settings, all_settled(dev_tenant, endpoint["id"]))
    (delivered,) = deliveries(dev_tenant, endpoint["id"])
    assert delivered["status"] == "delivered"
    assert len(delivered["attempts"]) == 9
    assert set(receiver.ids()) == {failed["webhook_id"]}
    # Another tenant's delivery id, or a made-up one, is 404.
    missing = dev_tenant.client.post(
        f"/kalimera/webhooks/{endpoint['id']}/deliveries/{endpoint['id']}/retry"
    )
    assert missing.status_code == 404


def test_the_retry_schedule_waits_5s_5m_30m_2h_5h_10h_10h_with_jitter() -> None:
    import random

    from kalimera.webhooks.delivery import retry_delay

    rand = random.Random(7)
    expected = (5, 300, 1800, 7200, 18000, 36000, 36000)
    for tries, base in enumerate(expected, start=1):
        waits = [retry_delay(tries, rand) for _ in range(200)]
        assert all(w is not None and base * 0.8 - 1 <= w <= base * 1.2 + 1 for w in waits)
        assert len(set(waits)) > 1 or base == 5
    assert retry_delay(8, rand) is None


def test_a_410_fails_the_delivery_and_disables_the_endpoint(
    dev_tenant: Tenant, dev_settings: Settings, receiver: Receiver
) -> None:
    receiver.behaviour = Behaviour(status=410)
    endpoint = create_endpoint(dev_tenant, receiver.url)
    dev_tenant.client.post(f"/kalimera/webhooks/{endpoint['id']}/test")
    drain(dev_settings, all_settled(dev_tenant, endpoint["id"]))
    (failed,) = deliveries(dev_tenant, endpoint["id"])
    assert (failed["status"], len(failed["attempts"])) == ("failed", 1)
    read = dev_tenant.client.get(f"/kalimera/webhooks/{endpoint['id']}").json()
    assert read["enabled"] is False
    assert "410" in read["disabled_reason"]
    # Disabled: new events are not sent to it; enabling clears the reason.
    start_call(dev_tenant)
    assert len(deliveries(dev_tenant, endpoint["id"])) == 1
    enabled = dev_tenant.client.patch(
        f"/kalimera/webhooks/{endpoint['id']}", json={"enabled": True}
    ).json()
    assert (enabled["enabled"], enabled["disabled_reason"]) == (True, None)


def test_five_days_of_failures_disable_the_endpoint(
    dev_tenant: Tenant, dev_settings: Settings, receiver: Receiver
) -> None:
    receiver.behaviour = Behaviour(status=503)
    endpoint = create_endpoint(dev_tenant, receiver.url)
    query(
        dev_settings,
        "UPDATE kalimera_webhook_endpoints SET failing_since = now() - interval '5 days 1 minute'"
        " WHERE id = %(id)s RETURNING id",
        {"id": endpoint["id"]},
    )
    dev_tenant.client.post(f"/kalimera/webhooks/{endpoint['id']}/test")
    drain(dev_settings, lambda: len(receiver.received) >= 1)
    read = dev_tenant.client.get(f"/kalimera/webhooks/{endpoint['id']}").json()
    assert read["enabled"] is False
    assert read["disabled_reason"] == "every delivery failed for 5 days"


def test_a_slow_receiver_costs_one_timeout(
    dev_tenant: Tenant, dev_settings: Settings, receiver: Receiver
) -> None:
    receiver.behaviour = Behaviour(delay=TIMEOUT * 3)
    endpoint = create_endpoint(dev_tenant, receiver.url)
    dev_tenant.client.post(f"/kalimera/webhooks/{endpoint['id']}/test")
    drain(dev_settings, lambda: bool(deliveries(dev_tenant, endpoint["id"])[0]["attempts"]))
    (pending,) = deliveries(dev_tenant, endpoint["id"])
    (attempt,) = pending["attempts"]
    assert (pending["status"], attempt["status"], attempt["error"]) == (
        "pending",
        None,
        "timed out",
    )
    # One timeout (a loaded machine may add some scheduling), never the receiver's 3 s.
    assert TIMEOUT * 1000 <= attempt["latency_ms"] < TIMEOUT * 1000 + 1500


def test_a_10_mb_answer_is_read_no_further_than_4_kib(
    dev_tenant: Tenant, dev_settings: Settings, receiver: Receiver
) -> None:
    receiver.behaviour = Behaviour(stream_bytes=10 * 1024 * 1024)
    endpoint = create_endpoint(dev_tenant, receiver.url)
    dev_tenant.client.post(f"/kalimera/webhooks/{endpoint['id']}/test")
    drain(dev_settings, all_settled(dev_tenant, endpoint["id"]))
    (delivered,) = deliveries(dev_tenant, endpoint["id"])
    assert delivered["status"] == "delivered"  # within the 1 s timeout, so never read to 10 MB
    deadline = time.monotonic() + 5
    while not receiver.streamed and time.monotonic() < deadline:
        time.sleep(0.05)
    # The connection was closed after 4 KiB: the receiver could not write its 10 MB.
    assert receiver.streamed
    assert receiver.streamed[0] < 10 * 1024 * 1024


def test_a_redirect_is_not_followed(
    dev_tenant: Tenant, dev_settings: Settings, receiver: Receiver
) -> None:
    elsewhere = Receiver().start()
    try:
        receiver.behaviour = Behaviour(status=307, location=elsewhere.url)
        endpoint = create_endpoint(dev_tenant, receiver.url)
        dev_tenant.client.post(f"/kalimera/webhooks/{endpoint['id']}/test")
        drain(dev_settings, lambda: bool(deliveries(dev_tenant, endpoint["id"])[0]["attempts"]))
        (pending,) = deliveries(dev_tenant, endpoint["id"])
        assert pending["attempts"][0]["status"] == 307
        assert pending["status"] == "pending"
        assert elsewhere.received == []
    finally:
        elsewhere.stop()


def test_replay_sends_every_event_since_again_with_its_original_id(
    dev_tenant: Tenant, dev_settings: Settings, receiver: Receiver
) -> None:
    endpoint = create_endpoint(dev_tenant, receiver.url)
    for _ in range(3):
        start_call(dev_tenant)
    drain(dev_settings, lambda: len(receiver.received) >= 3)
    first = sorted(receiver.ids())
    response = dev_tenant.client.post(
        f"/kalimera/webhooks/{endpoint['id']}/replay", json={"since": "2020-01-01T00:00:00Z"}
    )
    assert response.status_code == 202
    assert response.json()["deliveries"] == 3
    drain(dev_settings, lambda: len(receiver.received) >= 6)
    assert sorted(receiver.ids()[3:]) == first
    # A later endpoint gets the earlier events on replay too, with ids of its own.
    other = Receiver().start()
    try:
        late = create_endpoint(dev_tenant, other.url)
        replayed = dev_tenant.client.post(
            f"/kalimera/webhooks/{late['id']}/replay", json={"since": "2020-01-01T00:00:00Z"}
        )
        assert replayed.json()["deliveries"] == 3
        drain(dev_settings, lambda: len(other.received) >= 3)
        assert not set(other.ids()) & set(first)
        bodies = {orjson.loads(r.body)["data"]["id"] for r in other.received}
        assert len(bodies) == 3
    finally:
        other.stop()


def test_deleting_an_endpoint_drops_its_pending_deliveries(
    dev_tenant: Tenant, dev_settings: Settings, receiver: Receiver
) -> None:
    endpoint = create_endpoint(dev_tenant, receiver.url)
    start_call(dev_tenant)
    assert dev_tenant.client.delete(f"/kalimera/webhooks/{endpoint['id']}").status_code == 200
    rows = query(
        dev_settings,
        "SELECT count(*) AS n FROM kalimera_webhook_deliveries WHERE endpoint_id = %(e)s",
        {"e": endpoint["id"]},
    )
    assert rows[0]["n"] == 0
    # Its queued message finds nothing and is dropped; nothing reaches the receiver.
    rounds = iter(range(100))
    drain(dev_settings, lambda: next(rounds) >= 5)
    assert receiver.received == []


def test_the_deliveries_log_pages_and_filters(
    dev_tenant: Tenant, dev_settings: Settings, receiver: Receiver
) -> None:
    endpoint = create_endpoint(dev_tenant, receiver.url)
    for _ in range(5):
        start_call(dev_tenant)
    drain(dev_settings, lambda: len(receiver.received) >= 5)
    base = f"/kalimera/webhooks/{endpoint['id']}/deliveries"
    page = dev_tenant.client.get(base, params={"limit": 2, "page": 2}).json()
    assert (page["total"], page["page"], page["limit"], len(page["items"])) == (5, 2, 2, 2)
    assert dev_tenant.client.get(base, params={"status": "failed"}).json()["total"] == 0
    assert dev_tenant.client.get(base, params={"status": "delivered"}).json()["total"] == 5
