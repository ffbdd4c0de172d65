# Two commands for a fresh clone: `make run` and `make test`.
# Both build .venv from setup.cfg first; nothing else needs installing by hand.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JS_DIR := tests/interop/js
JS_STAMP := $(JS_DIR)/node_modules/.installed
# livekit-client for the web client's voice, served by the homeserver from node_modules.
WEB_DIR := homeserver/webclient
WEB_STAMP := $(WEB_DIR)/node_modules/.installed
# playwright-core for the web client's browser tests (they drive Debian's /usr/bin/chromium).
E2E_DIR := tests/e2e
E2E_STAMP := $(E2E_DIR)/node_modules/.installed
# Synapse for the federation interoperability tests, in its own virtualenv so that its
# pinned dependencies stay out of .venv (tests/support/synapse.py runs it from here).
SYNAPSE_VENV := .venv-synapse
SYNAPSE_SERIES := 1.163
SYNAPSE_STAMP := $(SYNAPSE_VENV)/.installed-$(SYNAPSE_SERIES)

.PHONY: run test install synapse clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Runs the homeserver on the embedded defaults: SQLite and media in ./data,
# http://127.0.0.1:8008; drocsid.toml and the signing key are made on first run.
run: $(STAMP) $(WEB_STAMP)
	$(BIN)/drocsid run

$(WEB_STAMP): $(WEB_DIR)/package.json $(WEB_DIR)/package-lock.json
	cd $(WEB_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_STAMP)

# matrix-js-sdk for the interoperability tests, pinned by package-lock.json.
$(JS_STAMP): $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $(JS_STAMP)

$(E2E_STAMP): $(E2E_DIR)/package.json $(E2E_DIR)/package-lock.json
	cd $(E2E_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $(E2E_STAMP)

# Installs from prebuilt wheels (Synapse's is abi3, CPython >= 3.10): no Rust toolchain,
# no libpq (the tests use SQLite). The stamp names the series, so bumping it reinstalls.
$(SYNAPSE_STAMP):
	test -x $(SYNAPSE_VENV)/bin/python || $(PYTHON) -m venv $(SYNAPSE_VENV)
	$(SYNAPSE_VENV)/bin/python -m pip install --quiet 'matrix-synapse==$(SYNAPSE_SERIES).*'
	touch $(SYNAPSE_STAMP)

synapse: $(SYNAPSE_STAMP)

# The whole suite with twisted trial, two workers. PostgreSQL must be reachable at
# 127.0.0.1:5432 as user postgres (override with DROCSID_TEST_POSTGRES).
test: $(STAMP) $(WEB_STAMP) $(JS_STAMP) $(E2E_STAMP) $(SYNAPSE_STAMP)
	$(BIN)/python -m twisted.trial -j2 tests

clean:
	rm -rf $(VENV) $(SYNAPSE_VENV) _trial_temp* build *.egg-info
