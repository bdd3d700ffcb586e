"""Concurrent writers: no lost updates, and If-Match refuses a stale full update."""

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from kalimera.agents.sections import KEYS
from kalimera.agents.sections import NAMES as SECTIONS
from tests.agents.conftest import create
from tests.conftest import Tenant


def test_100_concurrent_section_puts_lose_nothing(tenant: Tenant) -> None:
    agent_id = create(tenant.client)
    path = f"/kalimera/ai-agent/{agent_id}"
    headers = {"Authorization": f"Bearer {tenant.token}"}

    def write(i: int) -> tuple[int, int, int]:
        section = i % len(SECTIONS)
        # As long as the suite's other clients wait (httpx's default is 5 s): a write that got a
        # pool connection waits on the row lock behind up to 7 others, each a few round trips
        # through PgBouncer, which on a loaded machine took over 5 s once.
        client = httpx.Client(base_url=str(tenant.client.base_url), headers=headers, timeout=30)
        with client:
            # All 100 writes queue on the one agent row while holding pool connections: on a
            # loaded machine some wait past the pool timeout and get 503 + Retry-After, which
            # commits nothing. A client does what the answer says; lost updates are the bar.
            for _ in range(20):
                response = client.put(f"{path}/{SECTIONS[section]}", json={"Seq": i})
                if response.status_code != 503:
                    break
                time.sleep(float(response.headers.get("retry-after", "1")))
        assert response.status_code == 200, response.text
        # The ETag is the row version this write produced: the highest per section is the
        # write that landed last.
        return int(response.headers["etag"].strip('"')), section, i

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(write, range(100)))

    versions = sorted(v for v, _, _ in results)
    assert versions == list(range(2, 102)), "every write is its own row version"
    last: dict[int, tuple[int, int]] = {}
    for version, section, i in results:
        if section not in last or version > last[section][0]:
            last[section] = (version, i)
    agent = tenant.client.get(path).json()
    for section, (_, i) in last.items():
        assert agent[KEYS[section]] == {"Seq": i}, SECTIONS[section]


def test_a_stale_if_match_answers_412_and_changes_nothing(tenant: Tenant) -> None:
    agent_id = create(tenant.client)
    path = f"/kalimera/ai-agent/{agent_id}"
    tag = tenant.client.get(path).headers["etag"]

    assert (
        tenant.client.put(path, json={"name": "first"}, headers={"If-Match": tag}).status_code
        == 200
    )
    stale = tenant.client.put(path, json={"name": "second"}, headers={"If-Match": tag})
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    current = tenant.client.get(path)
    assert current.json()["name"] == "first"
    assert current.headers["etag"] != tag
    fresh = tenant.client.put(
        path, json={"name": "third"}, headers={"If-Match": current.headers["etag"]}
    )
    assert fresh.status_code == 200
    assert (
        tenant.client.put(path, json={"name": "x"}, headers={"If-Match": "junk"}).status_code == 412
    )
