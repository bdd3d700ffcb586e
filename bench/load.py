"""60 s of mixed load (80% reads, 20% writes) at 300 requests a second on loopback.

Bar (quality-bars.md): zero errors, p99 ≤ 200 ms. The server is one uvicorn worker in its own
process; the load generator is this process.
"""

import argparse
import asyncio
import itertools
import random
import uuid

import httpx

from bench._load import Request, open_loop
from bench._stack import BenchStack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()

    with BenchStack() as stack:
        url, _ = stack.start_server()
        tenant = uuid.uuid4()
        headers = {"Authorization": f"Bearer {stack.token(tenant)}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            agents = [
                client.post(
                    "/kalimera/ai-agent", json={"name": f"agent {i}", "type": "inbound"}
                ).json()["id"]
                for i in range(20)
            ]
            contacts = [
                client.post(
                    "/kalimera/contact", json={"first_name": "Ada", "last_name": f"L{i}"}
                ).json()["id"]
                for i in range(50)
            ]
        counter = itertools.count()
        rng = random.Random(1)

        def get_agent() -> Request:
            return "GET", f"/kalimera/ai-agent/{rng.choice(agents)}", {}

        def list_contacts() -> Request:
            return "GET", "/kalimera/contact", {"params": {"page": 1, "per_page": 20}}

        def get_contact() -> Request:
            return "GET", f"/kalimera/contact/{rng.choice(contacts)}", {}

        def create_contact() -> Request:
            body = {"first_name": "Load", "last_name": f"T{next(counter)}"}
            return "POST", "/kalimera/contact", {"json": body}

        def update_section() -> Request:
            return (
                "PUT",
                f"/kalimera/ai-agent/{rng.choice(agents)}/AIHub",
                {"json": {"n": next(counter)}},
            )

        mix = [
            (0.4, get_agent),
            (0.2, list_contacts),
            (0.2, get_contact),
            (0.1, create_contact),
            (0.1, update_section),
        ]
        result = asyncio.run(open_loop(url, headers, mix, rate=args.rate, seconds=args.seconds))
        print(result.summary(f"mixed load at {args.rate:.0f}/s"))
        print("bar: zero errors, p99 <= 200 ms")


if __name__ == "__main__":
    main()
