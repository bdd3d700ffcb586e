# The two commands: `make run` (the API and the triggers on the local stack) and `make test`
# (`make lint` before it, as CI does).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check -q

.PHONY: run test test-unit lint fmt bench fuzz openapi clean install installed audio-tools console \
	chromium pgbouncer screenshots corpus

## The environment: a venv with pinned dependencies, the package editable, Azurite from npm.
$(BIN)/kalimera: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements-dev.txt 2> >(grep -v '^WARNING: Location' >&2)
	$(PIP) install --no-deps -e . 2> >(grep -v '^WARNING: Location' >&2)
	touch $@

node_modules/.package-lock.json: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

## checkov (Bicep checks in tests/infra) in its own venv: its pins conflict with pytest's.
$(VENV)/checkov/bin/checkov: requirements-checkov.txt
	test -x $(VENV)/checkov/bin/python || $(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip --disable-pip-version-check -q install -r requirements-checkov.txt 2> >(grep -v '^WARNING: Location' >&2)
	touch $@

## openapi-python-client (tests/clients) in its own venv too: it pins typer below the app's.
$(VENV)/clients/bin/openapi-python-client: requirements-clients.txt
	test -x $(VENV)/clients/bin/python || $(PYTHON) -m venv $(VENV)/clients
	$(VENV)/clients/bin/pip --disable-pip-version-check -q install -r requirements-clients.txt 2> >(grep -v '^WARNING: Location' >&2)
	touch $@

## The four are independent: made side by side (most of their time is unpacking and compiling
## wheels and npm packages, one process a core).
INSTALLED := $(BIN)/kalimera node_modules/.package-lock.json $(VENV)/checkov/bin/checkov \
	$(VENV)/clients/bin/openapi-python-client

install:
	@$(MAKE) --no-print-directory -j4 installed

installed: $(INSTALLED)
	@:

## Debian packages the targets below install when missing: as root, or with sudo.
APT_INSTALL := sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); $$sudo apt-get update -qq && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends

## The encoders that make the test and benchmark recordings (tests/support/corpus.py), from
## Debian's packages: installed with apt-get when a command is missing (root, or sudo).
AUDIO_TOOLS := sox:sox espeak-ng:espeak-ng lame:lame oggenc:vorbis-tools opusenc:opus-tools \
	flac:flac ffprobe:ffmpeg
audio-tools:
	@missing="$$(for t in $(AUDIO_TOOLS); do command -v $${t%%:*} >/dev/null || echo $${t#*:}; done)"; \
	if [ -n "$$missing" ]; then \
		echo "installing audio tools: $$missing"; \
		$(APT_INSTALL) $$missing; \
	fi

## The operator console (console/, served at /kalimera/console/): built by esbuild into
## console/dist (git-ignored) whenever a source, the lock or the build script is newer.
CONSOLE_SOURCES := $(shell find console/src -type f) console/index.html console/build.mjs
console/dist/index.html: node_modules/.package-lock.json $(CONSOLE_SOURCES)
	node console/build.mjs

console: console/dist/index.html

## The browser the console's tests drive (tests/console): Debian's chromium, through Playwright's
## executable_path (Playwright's own browser download is never used); apt-get when missing.
chromium:
	@command -v chromium >/dev/null || { \
		echo "installing chromium"; \
		$(APT_INSTALL) chromium; \
	}

## The PgBouncer the API suite's app connects through (transaction mode, as Azure's built-in one
## runs; kalimera/dev/localstack.py starts it): Debian's pgbouncer, apt-get when missing. Only the
## binary is used: the tests start a private one on a free port, not the package's service.
pgbouncer:
	@command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || { \
		echo "installing pgbouncer"; \
		$(APT_INSTALL) pgbouncer; \
	}

run: install console
	$(BIN)/kalimera run

## The suite in one pytest-xdist worker a core (TEST_WORKERS=0 for one process): each worker starts
## its own stack (database, Redis db, Azurite, PgBouncer). The corpus is encoded before they start,
## so that no two workers encode the same recording.
TEST_WORKERS ?= logical
test: install audio-tools console chromium pgbouncer corpus
	$(BIN)/pytest -n $(TEST_WORKERS)

## The recordings corpus (tests/support/corpus.py), encoded once into .local/corpus.
corpus: install audio-tools
	$(BIN)/python -m tests.support.corpus

## One screenshot per console page, from a seeded stack, into docs/screenshots/ (the README
## shows them).
screenshots: install console chromium
	KALIMERA_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q tests/console/test_screenshots.py \
		tests/console/test_webhooks.py::test_screenshot_of_the_webhooks_page

## The unit tier alone (tests/unit, seconds): no Postgres, Redis or Azurite is started. It loads
## no conftest above tests/unit (the stack's fixtures do not even exist there) and none of the
## plugins only the other tier uses (schemathesis, hypothesis, anyio: importing them is most of
## the time). The audio tests read the recordings corpus (.local/corpus), encoded by `make corpus`
## on the first run of either target.
test-unit: install corpus
	$(BIN)/pytest tests/unit --confcutdir=tests/unit -p no:schemathesis -p no:hypothesispytest -p no:anyio

## The linters, the layers (import-linter's contracts in pyproject.toml) and the OpenAPI document
## (Redocly's recommended rules, redocly.yaml); CI runs it first.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	npx --no-install redocly lint infra/apim/openapi.json --format=stylish

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install audio-tools
	$(BIN)/python -m bench

fuzz: install
	KALIMERA_FUZZ_EXAMPLES=150 $(BIN)/pytest -s tests/test_schemathesis.py
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/hostile/test_probe_hypothesis.py

clean:
	rm -rf $(VENV) node_modules .local console/dist
