"""``make bench``: run every benchmark script in this folder and write ``bench/results.md``.

Each script prints its own figures (ratios measured side by side, medians); this runner only
runs them one after another, so they do not compete for the machine, and records what they said
with the machine and the date. ``python -m bench NAME ...`` runs some of them and keeps the
other scripts' sections of the previous results.
"""

import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    only = set(sys.argv[1:])
    scripts = sorted(
        p for p in HERE.glob("*.py") if not p.name.startswith("_") and (not only or p.stem in only)
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    sections = _previous_sections()
    failed = 0
    for script in scripts:
        print(f"== {script.name}", flush=True)
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", f"bench.{script.stem}"],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        print(result.stdout, end="")
        if result.returncode:
            failed += 1
            print(result.stderr[-3000:], file=sys.stderr)
        sections[script.stem] = "\n".join(
            [
                f"## {script.stem}",
                "",
                f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores ({cpu}), "
                f"Python {platform.python_version()}, {time.monotonic() - started:.0f} s"
                f"{', FAILED' if result.returncode else ''}.",
                "",
                "```",
                result.stdout.strip() or result.stderr.strip()[-2000:],
                "```",
                "",
            ]
        )
    header = "# Benchmark results\n\nWritten by `make bench` (`python -m bench [NAME ...]`).\n\n"
    (HERE / "results.md").write_text(header + "\n".join(sections[k] for k in sorted(sections)))
    return 1 if failed else 0


def _previous_sections() -> dict[str, str]:
    """The sections of the last results, by title: a script's section is titled with its name
    alone, so a section written by hand (``## statistics at 10,000,000 ...``) is kept beside it,
    not overwritten by it."""
    path = HERE / "results.md"
    if not path.exists():
        return {}
    sections: dict[str, str] = {}
    for chunk in path.read_text().split("\n## ")[1:]:
        name = chunk.split("\n", 1)[0].strip()
        sections[name] = "## " + chunk.rstrip() + "\n"
    return sections


if __name__ == "__main__":
    raise SystemExit(main())
