"""Cold start: `python -c "import function_app"` in fresh interpreters, median of N runs, with
and without telemetry configured (APPLICATIONINSIGHTS_CONNECTION_STRING set), side by side.

The bar (issue 17): <= 0.5 s median for the whole process. The import is what every cold start
pays, whichever trigger woke the instance; the FastAPI app is built on the first HTTP request
(``kalimera.asgi.LazyApp``), so the same runs also time the import plus building the app, which
is what an HTTP cold start pays before its first byte of I/O. Nothing is contacted: the settings
point at closed local ports and telemetry is only configured (the exporter sends in the
background later). Entra is not reached either: credentials are built, never asked for a token.

    .venv/bin/python bench/cold_start.py [--runs 15]
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import _bars

ROOT = Path(__file__).resolve().parents[1]
BAR_SECONDS = 0.5

BASE_ENV = {
    "KALIMERA_ENV": "production",
    "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "KALIMERA_STORAGE__blobServiceUri": "https://acct.blob.core.windows.net/",
    "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000000",
    "KALIMERA_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    # infra/ sets it (a Key Vault reference); it is checked at import
    "KALIMERA_GATEWAY_SECRET": "0123456789abcdef0123456789abcdef",
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
# The same, then the app an HTTP request needs built (what LazyApp does on its first call).
WITH_APP = CODE + "; from kalimera.app import create_app; create_app(function_app.get_settings())"


def one_run(env: dict[str, str], code: str = CODE) -> tuple[float, float, float]:
    """(whole process wall time, import time measured inside, the process's CPU time) in
    seconds. On a machine shared with other work the wall clock also counts the time the
    process waited for a core; its CPU time (user + system) is what the import itself costs."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code + "; import os; os._exit(0)"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, float(result.stdout.strip().splitlines()[-1]), cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    telemetry = {**BASE_ENV, **TELEMETRY}
    variants = {
        "without telemetry": (BASE_ENV, CODE),
        "with telemetry": (telemetry, CODE),
        "+ app, no telemetry": (BASE_ENV, WITH_APP),
        "+ app, telemetry": (telemetry, WITH_APP),
    }
    walls: dict[str, list[float]] = {name: [] for name in variants}
    imports: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    load = [os.getloadavg()[0]]
    one_run(BASE_ENV, WITH_APP)  # warm the OS file cache and the .pyc files once
    for _ in range(args.runs):  # interleaved, so machine noise hits every variant alike
        for name, (env, code) in variants.items():
            wall, imported, cpu = one_run(env, code)
            walls[name].append(wall)
            imports[name].append(imported)
            cpus[name].append(cpu)
    load.append(os.getloadavg()[0])
    print(f"cold start of `import function_app`, {args.runs} fresh interpreters each (median):")
    for name in variants:
        wall, imported = statistics.median(walls[name]), statistics.median(imports[name])
        cpu = statistics.median(cpus[name])
        bar = ""
        if not name.startswith("+"):
            verdict = "PASS" if wall <= BAR_SECONDS else "FAIL"
            on_cpu = "PASS" if cpu <= BAR_SECONDS else "FAIL"
            bar = f"   bar <= {BAR_SECONDS} s: {verdict} (on CPU time: {on_cpu})"
        print(
            f"  {name:19} process {wall:6.3f} s   import {imported:6.3f} s   CPU {cpu:6.3f} s"
            f"   (fastest process {min(walls[name]):.3f} s){bar}"
        )
    ratio = statistics.median(walls["with telemetry"]) / statistics.median(
        walls["without telemetry"]
    )
    print(f"  telemetry costs x{ratio:.2f} on the import")
    for name in ("without telemetry", "with telemetry"):
        wall = statistics.median(walls[name])
        _bars.bar(
            f"import function_app, {name}, median",
            f"{wall:.3f} s",
            f"<= {BAR_SECONDS} s",
            wall <= BAR_SECONDS,
        )
    print(
        f"  load average while measuring: {load[0]:.1f} at the start, {load[1]:.1f} at the end,"
        f" on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
