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

from bench._bars import parse

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
        load_before = os.getloadavg()[0]
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
                f"Python {platform.python_version()}, {time.monotonic() - started:.0f} s, load"
                f" average {load_before:.2f} before and {os.getloadavg()[0]:.2f} after"
                f"{', FAILED' if result.returncode else ''}.",
                "",
                "```",
                result.stdout.strip() or result.stderr.strip()[-2000:],
                "```",
                "",
            ]
        )
    table = _bars_table(sections)
    print(table)
    header = "# Benchmark results\n\nWritten by `make bench` (`python -m bench [NAME ...]`).\n\n"
    (HERE / "results.md").write_text(
        header + table + "\n" + "\n".join(sections[k] for k in sorted(sections))
    )
    return 1 if failed else 0


def _bars_table(sections: dict[str, str]) -> str:
    """Every bar the sections' scripts printed (``bench._bars``), one table: the figure beside
    the bar, and the script (whose section gives the date, the machine and the load)."""
    rows = [
        f"| {' | '.join(cells)} | {name} |"
        for name in sorted(sections)
        for cells in parse(sections[name])
        if len(cells) == 4
    ]
    return "\n".join(
        [
            "## Bars",
            "",
            "| measure | figure | bar | verdict | script |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


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
        if name != "Bars":
            sections[name] = "## " + chunk.rstrip() + "\n"
    return sections


if __name__ == "__main__":
    raise SystemExit(main())
