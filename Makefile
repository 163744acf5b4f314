# Two commands matter: `make demo` (the main job) and `make test` (the whole suite).
# Each installs what it needs into .venv/ inside the repo; nothing global is touched.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The real Claude Code CLI for the e2e tests, pinned exactly (unpinned, the registry can
# resolve an old release) and installed inside the repo, never globally.
CLAUDE_CODE_VERSION := 2.1.330
CLAUDE_CLI_DIR := .claude-cli
CLAUDE_CLI := $(CLAUDE_CLI_DIR)/node_modules/.bin/claude
CLAUDE_STAMP := $(CLAUDE_CLI_DIR)/.installed-$(CLAUDE_CODE_VERSION)

.PHONY: demo test lint typecheck unit bench clean claude-cli

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# npm's postinstall links the platform's native binary over bin/claude.exe; the
# version check fails the install loudly if that did not happen.
$(CLAUDE_STAMP):
	npm install --prefix $(CLAUDE_CLI_DIR) --no-audit --no-fund --save-exact @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION)
	@$(CLAUDE_CLI) --version | grep -qF '$(CLAUDE_CODE_VERSION)' || { echo "$(CLAUDE_CLI) is not a working claude $(CLAUDE_CODE_VERSION)" >&2; exit 1; }
	touch $@

claude-cli: $(CLAUDE_STAMP)

demo: $(STAMP) $(CLAUDE_STAMP)
	AGENT_POOL_CLAUDE_BIN=$(CURDIR)/$(CLAUDE_CLI) $(BIN)/agent-pool demo

lint: $(STAMP)
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/ruff format --check src tests $(wildcard bench)

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

test: lint typecheck $(CLAUDE_STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
