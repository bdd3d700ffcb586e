"""Cold start: `python -c "import function_app"` in fresh interpreters, median of N runs, with
and without telemetry configured (APPLICATIONINSIGHTS_CONNECTION_STRING set), side by side.

The bar (quality-bars.md): <= 1.5 s median with telemetry configured. Nothing is contacted: the
settings point at closed local ports and telemetry is only configured (the exporter sends in the
background later). Entra is not reached either: credentials are built, never asked for a token.

    .venv/bin/python bench/cold_start.py [--runs 15]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BAR_SECONDS = 1.5

BASE_ENV = {
    "KALIMERA_ENV": "production",
    "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "KALIMERA_STORAGE__blobServiceUri": "https://acct.blob.core.windows.net/",
    "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000000",
    "KALIMERA_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
}
TELEMETRY = {
    "APPLICATIONINSIGHTS_CONNECTION_STRING": (
        "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
        "IngestionEndpoint=https://127.0.0.1:1/"
    ),
}
# Time the import only, then leave at once (os._exit skips the exporter's shutdown flush).
CODE = (
    "import time; t = time.perf_counter(); import function_app; "
    "print(time.perf_counter() - t, flush=True)"
)


def one_run(env: dict[str, str]) -> tuple[float, float]:
    """(whole process wall time, import time measured inside) in seconds."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", CODE + "; import os; os._exit(0)"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    wall = time.perf_counter() - start
    return wall, float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    variants = {"without telemetry": BASE_ENV, "with telemetry": {**BASE_ENV, **TELEMETRY}}
    walls: dict[str, list[float]] = {name: [] for name in variants}
    imports: dict[str, list[float]] = {name: [] for name in variants}
    one_run(BASE_ENV)  # warm the OS file cache and the .pyc files once
    for _ in range(args.runs):  # interleaved, so machine noise hits both alike
        for name, env in variants.items():
            wall, imported = one_run(env)
            walls[name].append(wall)
            imports[name].append(imported)
    print(f"cold start of `import function_app`, {args.runs} fresh interpreters each (median):")
    for name in variants:
        wall, imported = statistics.median(walls[name]), statistics.median(imports[name])
        print(
            f"  {name:18} process {wall:6.3f} s   import {imported:6.3f} s"
            f"   (fastest process {min(walls[name]):.3f} s)"
        )
    with_t = statistics.median(walls["with telemetry"])
    ratio = with_t / statistics.median(walls["without telemetry"])
    verdict = "within" if with_t <= BAR_SECONDS else "OVER"
    print(f"  telemetry costs x{ratio:.2f}; {verdict} the {BAR_SECONDS} s bar ({with_t:.3f} s)")
    print(f"  load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
