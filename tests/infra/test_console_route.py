"""The operator console through API Management (infra/app/apim.bicep, infra/README.md): a second
API serves the console's files at /v1/kalimera/console/ without a subscription key, GET only,
forwarded to the Function App's console folder with the gateway secret the app requires."""

from __future__ import annotations

import re

from kalimera import console, gateway
from tests.infra.bicep import INFRA, of_type, symbol

APIM = INFRA / "app" / "apim.bicep"


def test_the_console_api_needs_no_subscription_and_sits_inside_the_api_path() -> None:
    main = symbol(APIM, "api")
    page = symbol(APIM, "consoleApi")
    assert main.props["properties.subscriptionRequired"] == "true"
    assert page.props["properties.subscriptionRequired"] == "false"
    # The page calls the API at the path before its own /kalimera/console/: v1, the API's path.
    assert page.props["properties.path"] == main.props["properties.path"] + console.PREFIX
    assert page.props["properties.protocols"].replace(" ", "") == "['https']"


def test_the_console_api_forwards_gets_only_to_the_console_folder_of_the_function_app() -> None:
    operations = [
        o for o in of_type("Microsoft.ApiManagement/service/apis/operations") if o.file == APIM
    ]
    mine = [o for o in operations if o.props["parent"] == "consoleApi"]
    assert {o.props["properties.method"] for o in mine} == {"GET"}
    assert {o.props["properties.urlTemplate"] for o in mine} == {"/", "/{*path}"}
    backend = symbol(APIM, "consoleBackend")
    assert backend.props["properties.url"].endswith(f"{console.PREFIX}'")
    assert "func.properties.defaultHostName" in backend.props["properties.url"]


def test_the_console_policy_picks_that_backend_and_sends_the_gateway_secret() -> None:
    assert "loadTextContent('../apim/console-policy.xml')" in symbol(APIM, "consolePolicy").text
    policy = (INFRA / "apim" / "console-policy.xml").read_text()
    assert '<set-backend-service backend-id="kalimera-console" />' in policy
    assert symbol(APIM, "consoleBackend").props["name"] == "kalimera-console"
    header = re.search(
        r'<set-header name="([^"]+)" exists-action="override">\s*'
        r"<value>\{\{kalimera-gateway-secret\}\}</value>",
        policy,
    )
    assert header is not None
    assert header[1].lower().encode() == gateway.HEADER
