"""How the app serves the built console: the headers (a strict CSP, no inline script, caching),
the gzip twins, the first load's compressed JavaScript (at most 250 KB), what happens where
nothing was built, and the token's own scopes that decide what the console shows."""

import gzip
import re
import uuid
from pathlib import Path

import httpx
import pytest

from kalimera import console
from kalimera.auth import Scope
from tests.conftest import Server, Tenant

FIRST_LOAD_LIMIT = 250 * 1000  # bytes of gzip-compressed JavaScript (console.md)


@pytest.fixture(scope="module")
def index_html() -> str:
    path = console.DIST / "index.html"
    if not path.is_file():
        pytest.fail("the console is not built: `make test` builds it (or `make console`)")
    return path.read_text()


def scripts(html: str) -> list[str]:
    return re.findall(r'<script[^>]*src="assets/([^"]+)"', html)


def test_the_index_is_served_uncached_with_a_strict_policy(anon: httpx.Client, index_html: str):
    answer = anon.get("/kalimera/console/")
    assert answer.status_code == 200
    assert answer.text == index_html
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["cache-control"] == "no-cache"
    csp = answer.headers["content-security-policy"]
    assert csp.startswith("default-src 'self';")
    assert "script-src 'self';" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    # the turns' audio comes from the blob store that signs them (Azurite here)
    assert re.search(r"media-src 'self' http://127\.0\.0\.1:\d+;", csp)
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_page_has_no_inline_script_and_nothing_from_elsewhere(index_html: str):
    tags = re.findall(r"<script\b[^>]*>(.*?)</script>", index_html, re.S)
    assert tags == [""]  # one script, by src, with no body
    assert not re.search(r"\son\w+=", index_html)  # no inline handlers
    assert not re.search(r'(src|href)="(https?:)?//', index_html)  # no CDN


def test_the_folder_without_its_slash_redirects_relatively(anon: httpx.Client):
    """Relative, so that behind API Management's /v1 the browser stays under /v1."""
    answer = anon.get("/kalimera/console")
    assert answer.status_code == 308
    assert answer.headers["location"] == "console/"
    assert anon.get("/kalimera/console", follow_redirects=True).url.path == "/kalimera/console/"


def test_hashed_assets_are_cached_for_a_year_and_sent_gzipped(anon: httpx.Client, index_html: str):
    (name,) = scripts(index_html)
    plain = anon.get(f"/kalimera/console/assets/{name}", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("text/javascript")
    assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "content-encoding" not in plain.headers
    zipped = anon.get(f"/kalimera/console/assets/{name}", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == plain.content  # httpx inflated it: the same file
    assert "content-security-policy" in zipped.headers


@pytest.mark.parametrize(
    "name", ["nope-ABCDEFGH.js", "..%2Findex.html", "main.js", ".env", "main-ABCDEFGH.map"]
)
def test_anything_but_a_built_asset_is_404_problem(anon: httpx.Client, name: str):
    answer = anon.get(f"/kalimera/console/assets/{name}")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


def test_the_first_load_is_at_most_250_kb_of_compressed_javascript(index_html: str):
    """Everything index.html loads (one bundle: no code splitting), compressed as served."""
    total = 0
    for name in scripts(index_html):
        data = (console.DIST / "assets" / name).read_bytes()
        total += len(gzip.compress(data, compresslevel=9))
        assert (console.DIST / "assets" / f"{name}.gz").read_bytes() != b""
    assert 0 < total <= FIRST_LOAD_LIMIT, f"{total} bytes of gzip JavaScript"


def test_without_a_build_the_console_says_so_and_the_api_works(
    anon: httpx.Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tenant: Tenant
):
    monkeypatch.setattr(console, "DIST", tmp_path / "dist")
    answer = anon.get("/kalimera/console/")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == console.NOT_BUILT
    assert tenant.client.get("/kalimera/statistics/realtime").status_code == 200


def test_a_token_reads_its_own_scopes(server: Server, new_tenant):
    narrow = new_tenant((Scope.CONVERSATIONS_READ,))
    me = narrow.client.get("/kalimera/tokens/current")
    assert me.status_code == 200, me.text
    assert me.json()["scopes"] == ["conversations:read"]
    assert me.json()["revoked_at"] is None


def test_the_current_token_needs_a_token(anon: httpx.Client):
    answer = anon.get("/kalimera/tokens/current")
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("built", [True, False])
def test_make_run_prints_the_console_link_beside_the_token(
    built: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    from kalimera.dev import runner

    if not built:
        monkeypatch.setattr(console, "DIST", tmp_path / "dist")
    runner._print_banner(host="127.0.0.1", port=7071, tenant_id=uuid.uuid4(), token="klm_x")
    lines = capsys.readouterr().out.splitlines()
    (link,) = [line for line in lines if line.strip().startswith("console:")]
    assert "http://127.0.0.1:7071/kalimera/console/" in link
    assert ("not built" in link) is not built
    assert [line.strip().split(":")[0] for line in lines if line.strip()][2:4] == [
        "console",
        "tenant",
    ]
