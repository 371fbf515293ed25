# craftlora: `make demo` and `make test` work on a fresh machine from a clean clone.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/craftlora demo --out demo-out

test: $(STAMP)
	$(BIN)/python -m ruff check src tests bench recipes
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/python -m ruff check src tests bench recipes

bench: $(STAMP)
	$(BIN)/python -m bench $(or $(BENCH),all)

clean:
	rm -rf $(VENV) demo-out
