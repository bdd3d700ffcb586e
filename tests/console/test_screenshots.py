"""One screenshot per console page of the seeded tenant: ``make screenshots`` writes them to
``docs/screenshots/`` (``KALIMERA_SCREENSHOTS``), which the README shows; ``make test`` writes
them to a temporary folder, so the target cannot rot unnoticed."""

import os
from pathlib import Path

from playwright.sync_api import Page

from tests.conftest import Server
from tests.console.conftest import Seeded, sign_in
from tests.console.test_pages import pages


def test_screenshots_of_every_page(page: Page, server: Server, seeded: Seeded, tmp_path: Path):
    folder = Path(os.environ.get("KALIMERA_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    sign_in(page, server, seeded.tenant.token)
    for name, (fragment, ready) in pages(seeded).items():
        page.goto(f"{server.url}/kalimera/console/{fragment}")
        page.locator(ready).first.wait_for()
        page.wait_for_load_state("networkidle")
        path = folder / f"{name}.png"
        page.screenshot(path=path, full_page=True)
        assert path.stat().st_size > 10_000, name
    page.set_viewport_size({"width": 390, "height": 844})
    fragment, ready = pages(seeded)["overview"]
    page.goto(f"{server.url}/kalimera/console/{fragment}")
    page.locator(ready).first.wait_for()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=folder / "overview-390.png", full_page=True)
