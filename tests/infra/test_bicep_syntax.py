"""Every .bicep file parses (tree-sitter-bicep): a syntax error never reaches `azd up`."""

import pytest

from tests.infra.bicep import ROOT, bicep_files, syntax_errors


def test_infra_has_the_azd_layout() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in bicep_files()}
    assert {"infra/main.bicep", "infra/eventgrid.bicep", "infra/app/function.bicep"} <= names
    assert (ROOT / "azure.yaml").exists()
    assert (ROOT / "infra" / "main.parameters.json").exists()
    # The deployment package is the project folder: no local environment or tooling in it.
    ignored = (ROOT / ".funcignore").read_text().split()
    assert {".venv/", "node_modules/", ".local/", "tests/", ".azure/"} <= set(ignored)


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_bicep_file_parses_without_syntax_errors(path) -> None:  # type: ignore[no-untyped-def]
    assert syntax_errors(path.read_bytes()) == []


@pytest.mark.parametrize(
    "broken",
    [
        b"reource x 'Microsoft.Web/sites@2024-04-01' = {\n  name: 'x'\n}\n",
        b"resource x 'Microsoft.Web/sites@2024-04-01' = {\n  name: 'x'\n",
        b"param p string =\n",
        b"output o = 'x'\n",
    ],
)
def test_the_parser_reports_broken_bicep(broken: bytes) -> None:
    assert syntax_errors(broken) != []
