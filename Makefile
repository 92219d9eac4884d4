# numpolville-bot — every target installs what it needs first (through .install.stamp).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

include Makefile.bsky

.PHONY: install test lint run demo bench clean

install: .install.stamp

# The package (editable) with its test and browse extras, the local Bluesky network (npm) and the
# Debian packages the tests use (PostgreSQL for the AppView, Chromium for the digest page).
.install.stamp: pyproject.toml $(BSKY_DIR)/node_modules/.stamp .postgres.stamp .chromium.stamp
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,browse]'
	touch $@

.chromium.stamp:
	@if command -v chromium >/dev/null 2>&1; then touch $@; \
	elif [ "$$(id -u)" = "0" ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium && touch $@; \
	else echo "chromium: not installed and not root: the digest page test will fail (apt-get install chromium)"; fi

# wrk, the HTTP load tool `make bench` drives the Bluesky feed service with (issue 16).
.wrk.stamp:
	@if command -v wrk >/dev/null 2>&1; then touch $@; \
	elif [ "$$(id -u)" = "0" ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wrk && touch $@; \
	else echo "wrk: not installed and not root: the feed benchmark is skipped (apt-get install wrk)"; fi

# The whole suite. Exit code 5 (no test collected) is a failure, never a silent pass.
test: .install.stamp
	NUMPOLVILLE_REQUIRE_BSKY=1 $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

lint: .install.stamp
	$(BIN)/ruff check bot tests bench
	$(BIN)/mypy

run: .install.stamp
	$(BIN)/numpolville run

demo: .install.stamp
	$(BIN)/python -m bot.demo

bench: .install.stamp .wrk.stamp
	$(BIN)/python -m bench

clean:
	rm -rf .install.stamp .chromium.stamp .postgres.stamp .wrk.stamp $(VENV) $(BSKY_DIR)/node_modules data/demo
