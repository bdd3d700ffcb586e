"""The line a benchmark prints for each bar it measures, which ``make bench`` collects.

``python -m bench`` reads these lines from every script's output and prints them, and writes them
at the top of ``bench/results.md``, as one table: each figure beside its bar, whichever script
measured it and when.
"""

from __future__ import annotations

PREFIX = "BAR |"


def bar(measure: str, figure: str, target: str, met: bool) -> None:
    """Print one bar's figure (``figure``) beside the bar (``target``) and whether it holds."""
    print(f"{PREFIX} {measure} | {figure} | {target} | {'met' if met else 'NOT met'}", flush=True)


def parse(output: str) -> list[list[str]]:
    """The bar lines of a script's output, as [measure, figure, bar, verdict] rows."""
    return [
        [cell.strip() for cell in line[len(PREFIX) :].split("|")]
        for line in output.splitlines()
        if line.startswith(PREFIX)
    ]
