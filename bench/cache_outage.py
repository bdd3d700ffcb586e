"""Redis stopped during a 30 s read load of cached agents: zero failed requests (quality-bars.md).

Redis is a private redis-server the benchmark starts; it is killed a third of the way through.
"""

import argparse
import asyncio
import random
import uuid

import httpx

from bench._load import Request, open_loop
from bench._stack import BenchStack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()

    with BenchStack() as stack:
        redis_url, redis = stack.local.start_redis()
        url, _ = stack.start_server(REDIS_URL=redis_url)
        headers = {"Authorization": f"Bearer {stack.token(uuid.uuid4())}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            agents = [
                client.post(
                    "/kalimera/ai-agent", json={"name": f"a{i}", "type": "outbound"}
                ).json()["id"]
                for i in range(20)
            ]
        rng = random.Random(3)
        killed: dict[str, float | None] = {"at": None}

        def tick(elapsed: float) -> None:
            if killed["at"] is None and elapsed >= args.seconds / 3:
                redis.kill()
                killed["at"] = elapsed

        def read() -> Request:
            return "GET", f"/kalimera/ai-agent/{rng.choice(agents)}", {}

        result = asyncio.run(
            open_loop(
                url, headers, [(1.0, read)], rate=args.rate, seconds=args.seconds, on_tick=tick
            )
        )
        redis.wait()
        print(
            result.summary(
                f"agent reads at {args.rate:.0f}/s, Redis killed at {killed['at']:.1f} s"
            )
        )
        print("bar: zero failed requests")


if __name__ == "__main__":
    main()
