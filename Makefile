# Two commands for a fresh clone: `make run` and `make test`.
# Both build .venv from setup.cfg first; nothing else needs installing by hand.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JS_DIR := tests/interop/js
JS_STAMP := $(JS_DIR)/node_modules/.installed

.PHONY: run test install clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Runs the homeserver on the embedded defaults: SQLite and media in ./data,
# http://127.0.0.1:8008; drocsid.toml and the signing key are made on first run.
run: $(STAMP)
	$(BIN)/drocsid run

# matrix-js-sdk for the interoperability tests, pinned by package-lock.json.
$(JS_STAMP): $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $(JS_STAMP)

# The whole suite with twisted trial, two workers. PostgreSQL must be reachable at
# 127.0.0.1:5432 as user postgres (override with DROCSID_TEST_POSTGRES).
test: $(STAMP) $(JS_STAMP)
	$(BIN)/python -m twisted.trial -j2 tests

clean:
	rm -rf $(VENV) _trial_temp* build *.egg-info
