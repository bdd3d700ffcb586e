"""Only the app is deployed: the files the deploy ships import ``function_app`` on their own.

``func azure functionapp publish`` and ``azd deploy`` zip the project folder less what
``.funcignore`` names (gitignore patterns); Azure then installs ``requirements.txt``. Here the
same set is built from the repository's files (tracked, or new and not ignored by git), copied
to a temporary folder, and imported there by an interpreter that sees that folder, the standard
library and the venv's site-packages, with every installed distribution that ``requirements.txt``
does not pull in hidden: a deployed module that needed the dev package, a test helper or a
dev-only dependency fails to import.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path, PurePosixPath

import pathspec
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DEV_MODULES = {"localstack", "devrunner", "runner", "poller", "seed"}

# Imports every module of the copy (`__main__` runs the CLI, so it is named, not imported), then
# reports where `kalimera` came from. Hidden distributions are refused by a finder put first.
_PROBE = """
import importlib, importlib.abc, json, pkgutil, sys
hidden = set(json.loads(sys.argv[2]))

class Hidden(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in hidden:
            raise ModuleNotFoundError(f"{name} is not a deployed dependency", name=name)
        return None

sys.meta_path.insert(0, Hidden())
sys.path[:] = json.loads(sys.argv[1])
import function_app
import kalimera
for module in pkgutil.walk_packages(kalimera.__path__, "kalimera."):
    if not module.name.endswith("__main__"):
        importlib.import_module(module.name)
print(json.dumps({
    "kalimera": kalimera.__file__,
    "functions": sorted(f.get_function_name() for f in function_app.app.get_functions()),
    "modules": sorted(sys.modules),
}))
"""


def deployed_files() -> list[str]:
    """The project's files less ``.funcignore``'s patterns, as the deploy's zip holds them."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    ignore = pathspec.GitIgnoreSpec.from_lines((ROOT / ".funcignore").read_text().splitlines())
    return sorted(f for f in listed if (ROOT / f).is_file() and not ignore.match_file(f))


def deployed_distributions() -> set[str]:
    """``requirements.txt`` and everything it pulls in (extras and markers as pip reads them)."""
    wanted = [
        Requirement(line)
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    found: set[str] = set()
    while wanted:
        requirement = wanted.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        found.add(name)
        for text in metadata.distribution(name).requires or []:
            needed = Requirement(text)
            extras = requirement.extras or {""}
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in extras):
                wanted.append(needed)
    return found


def hidden_modules(deployed: set[str], own: set[str]) -> set[str]:
    """Top-level modules that only distributions outside ``deployed`` provide."""
    return {
        module
        for module, dists in metadata.packages_distributions().items()
        if module not in own and not deployed & {canonicalize_name(d) for d in dists}
    }


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("deployment")
    for name in deployed_files():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, folder / name)
    return folder


def test_the_deployment_holds_the_app_and_no_dev_code_tests_benchmarks_or_scripts(
    package: Path,
) -> None:
    files = [PurePosixPath(p.relative_to(package)) for p in package.rglob("*") if p.is_file()]
    assert {"function_app.py", "host.json", "requirements.txt"} <= {str(f) for f in files}
    assert PurePosixPath("kalimera/app.py") in files
    assert not [f for f in files if f.parts[0] in {"tests", "bench", "scripts", "infra", "docs"}]
    assert not [f for f in files if f.parts[:2] == ("kalimera", "dev")]
    # the console's sources stay home; only its build (when made) ships
    assert not [f for f in files if f.parts[0] == "console" and f.parts[1] != "dist"]
    assert not [f for f in files if f.suffix == ".py" and f.stem in DEV_MODULES]


def test_function_app_and_every_deployed_module_import_from_the_deployment_alone(
    package: Path,
) -> None:
    paths = sysconfig.get_paths()
    stdlib = [p for p in sys.path if p and Path(p).is_relative_to(paths["stdlib"])]
    search = list(dict.fromkeys([str(package), *stdlib, paths["purelib"], paths["platlib"]]))
    hidden = hidden_modules(deployed_distributions(), own={"kalimera", "function_app"})
    assert {"pytest", "hypothesis", "schemathesis"} <= hidden
    production = {
        "KALIMERA_ENV": "production",
        "DATABASE_URL": "postgresql://kalimera@127.0.0.1:5432/kalimera",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "KALIMERA_STORAGE": "UseDevelopmentStorage=true",
        "KALIMERA_ENCRYPTION_KEY": base64.b64encode(b"\1" * 32).decode(),
    }
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _PROBE, json.dumps(search), json.dumps(sorted(hidden))],
        cwd=package,
        env={"PATH": "/usr/bin:/bin", **production},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.splitlines()[-1])
    assert Path(seen["kalimera"]).is_relative_to(package)
    assert {"http_app_func", "ingest_recording", "rollup_statistics"} <= set(seen["functions"])
    assert not [m for m in seen["modules"] if m.startswith(("kalimera.dev", "tests", "bench"))]
