# Two entry points for a fresh machine (README): `make demo` and `make test`.
# Both set the environment up first (idempotent: a second `make setup` takes seconds).
VENV ?= .venv
BIN := $(VENV)/bin
export VENV

.PHONY: setup demo test lint bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	@$(BIN)/depth-pose demo $(ARGS)

test: setup
	@bash scripts/run_tests.sh $(ARGS)

lint: setup
	@$(BIN)/ruff check .
	@$(BIN)/mypy

clean:
	rm -rf out runs .pytest_cache .ruff_cache .mypy_cache build install log
