# Two commands for a newcomer: `make run` and `make test`. Everything else installs itself from the lock file.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9

.PHONY: run test bench lint docs fmt openapi clean-var deps

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(BIN)/uv pyproject.toml uv.lock
	$(BIN)/uv sync --frozen --inexact --python $(BIN)/python
	touch $@

deps: $(VENV)/.synced

run: deps
	$(BIN)/szt run

test: deps
	$(BIN)/pytest

# `make bench ONLY="oidc identity"` runs some groups (python -m bench --help lists them)
bench: deps
	$(BIN)/python -m bench $(foreach g,$(ONLY),--only $(g))  # prints the table, writes it into docs/benchmarks.md

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports --no-cache

docs: deps
	$(BIN)/mkdocs build --strict --site-dir var/site

fmt: deps
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

openapi: deps
	$(BIN)/szt openapi export

clean-var:
	rm -rf var
