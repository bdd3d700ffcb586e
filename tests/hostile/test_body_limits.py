"""Limits before work (quality-bars.md, "body limits"): a body over its route's limit is refused
with 413 before it is read or parsed, with or without a token; a request without a valid token
never has its body read at all."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from kalimera.auth import new_token
from kalimera.errors import TooLarge
from kalimera.sizecap import SizeCap, read_capped
from tests.conftest import Tenant
from tests.hostile.conftest import MiB, ProcessServer, json_filler, pieces, stream_request
from tests.support.problems import assert_problem

HUGE = 256 * MiB
RSS_BUDGET_KIB = 32 * 1024
SECONDS = 2.0


def _huge_json(server: ProcessServer, headers: dict[str, str]) -> tuple[int, float, int]:
    """Send 256 MiB of JSON; the answer's status, its time, and the server's peak RSS growth."""
    before = server.reset_peak_rss()
    answer = stream_request(
        server.port,
        "POST",
        "/kalimera/ai-agent",
        {"Content-Type": "application/json", **headers},
        json_filler(HUGE),
    )
    growth = server.status_kib("VmHWM") - before
    print(
        f"256 MiB JSON {sorted(headers)}: {answer.status} in {answer.seconds:.3f} s, "
        f"{answer.sent / MiB:.1f} MiB taken, peak RSS +{growth / 1024:.1f} MiB"
    )
    assert answer.headers["content-type"] == "application/problem+json"
    return answer.status, answer.seconds, growth


def test_a_256_mib_json_body_without_a_token_is_refused_fast_in_flat_memory(
    process_server: ProcessServer,
) -> None:
    declared = {"Content-Length": str(HUGE)}
    for headers in (declared, {}):  # a declared length, then chunked (no length at all)
        status, seconds, growth = _huge_json(process_server, headers)
        assert status in (401, 413)
        assert seconds < SECONDS
        assert growth < RSS_BUDGET_KIB


def test_a_256_mib_json_body_with_a_token_is_413_fast_in_flat_memory(
    process_server: ProcessServer, process_token: str
) -> None:
    auth = {"Authorization": f"Bearer {process_token}"}
    for headers in ({**auth, "Content-Length": str(HUGE)}, auth):
        status, seconds, growth = _huge_json(process_server, headers)
        assert status == 413
        assert seconds < SECONDS
        assert growth < RSS_BUDGET_KIB


def test_a_body_without_a_valid_token_is_never_read(process_server: ProcessServer) -> None:
    """The head announces a body that never comes: only a server that answers without reading
    it answers at all."""
    for token in (None, "klm_nope", new_token()):
        headers = {"Content-Type": "application/json", "Content-Length": "100"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        answer = stream_request(
            process_server.port, "POST", "/kalimera/ai-agent", headers, iter(()), timeout=5
        )
        assert answer.status == 401
        assert answer.headers["www-authenticate"] == "Bearer"


def test_json_over_1_mib_is_413_and_up_to_1_mib_is_parsed(tenant: Tenant) -> None:
    big = {"name": "a", "description": "x" * MiB}
    problem = assert_problem(tenant.client.post("/kalimera/ai-agent", json=big), 413)
    assert "1 MiB" in str(problem["detail"])
    fits = {"name": "a", "type": "inbound", "description": "x" * (MiB - 100)}
    # Under the body limit, so the model decides: the description's own limit (5,000).
    assert_problem(tenant.client.post("/kalimera/ai-agent", json=fits), 422)

    chunked = httpx.post(
        f"{tenant.client.base_url}/kalimera/contact",
        content=iter([b'{"first_name": "', b"x" * MiB, b'", "last_name": "y"}']),
        headers={**tenant.client.headers, "Content-Type": "application/json"},
    )
    assert_problem(chunked, 413)


def test_a_file_route_takes_its_own_limit(tenant: Tenant) -> None:
    """The CSV import takes 10 MiB, more than JSON's 1 MiB; one byte more is 413."""
    header = b"first_name,last_name\n"
    row = b"Maria,Papadopoulou\n"
    rows = row * ((2 * MiB) // len(row))
    response = tenant.client.post(
        "/kalimera/contact/import",
        content=header + rows[: 10_000 * len(row)],
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    over = header + b"x" * (10 * MiB - len(header) + 1)
    problem = assert_problem(
        tenant.client.post(
            "/kalimera/contact/import", content=over, headers={"Content-Type": "text/csv"}
        ),
        413,
    )
    assert "10 MiB" in str(problem["detail"])


def test_a_csv_file_part_over_10_mib_is_413_though_its_form_fits_the_body_limit(
    tenant: Tenant,
) -> None:
    """The body guard lets the form's envelope through; the file's own cap refuses the file."""
    over = b"first_name,last_name\n" + b"x" * (10 * MiB)
    response = tenant.client.post(
        "/kalimera/contact/import", files={"file": ("contacts.csv", over, "text/csv")}
    )
    problem = assert_problem(response, 413)
    assert problem["detail"] == "The file is larger than 10 MiB"


def test_a_size_cap_counts_across_chunks_and_refuses_the_byte_past_its_limit() -> None:
    cap = SizeCap(limit=10, detail="over ten")
    assert cap.take(b"12345") == b"12345"
    assert cap.take(b"67890") == b"67890"
    with pytest.raises(TooLarge, match="over ten"):
        cap.take(b"!")


def test_a_capped_read_stops_at_the_first_chunk_past_the_cap() -> None:
    pulled: list[int] = []

    async def stream(chunks: int) -> AsyncIterator[bytes]:
        for n in range(chunks):
            pulled.append(n)
            yield b"x" * 1024

    exact = asyncio.run(read_capped(stream(4), SizeCap(limit=4 * 1024, detail="-")))
    assert exact == b"x" * 4096
    pulled.clear()
    with pytest.raises(TooLarge):
        asyncio.run(read_capped(stream(100), SizeCap(limit=3 * 1024 + 1, detail="-")))
    assert pulled == [0, 1, 2, 3]


def test_an_upload_over_25_mib_is_413_before_the_agent_is_looked_up(tenant: Tenant) -> None:
    agent_id = uuid.uuid4()  # no such agent: the limit answers first
    response = tenant.client.post(
        f"/kalimera/ai-agent/{agent_id}/voice",
        content=b"x" * (27 * MiB),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert_problem(response, 413)


def test_a_chunked_upload_is_counted_as_it_streams(
    process_server: ProcessServer, process_token: str
) -> None:
    """No Content-Length to refuse up front: the count stops it just past 25 MiB + the form."""
    agent = httpx.post(
        f"{process_server.url}/kalimera/ai-agent",
        json={"name": "a", "type": "inbound"},
        headers={"Authorization": f"Bearer {process_token}"},
    ).json()["id"]
    boundary = "hostileboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="voice_file"; '
        'filename="call.wav"\r\nContent-Type: audio/wav\r\n\r\n'
    ).encode()
    before = process_server.reset_peak_rss()
    answer = stream_request(
        process_server.port,
        "POST",
        f"/kalimera/ai-agent/{agent}/voice",
        {
            "Authorization": f"Bearer {process_token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
        iter([head + b"RIFF\x00\x00\x00\x00WAVEfmt ", *pieces(HUGE, fill=b"\x00")]),
    )
    growth = process_server.status_kib("VmHWM") - before
    print(f"chunked upload: {answer.status} after {answer.sent / MiB:.1f} MiB, +{growth} KiB")
    assert answer.status == 413
    assert answer.sent < 40 * MiB
