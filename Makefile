# craftlora: `make demo` and `make test` work on a fresh machine from a clean clone.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint bench clean chromium

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/craftlora demo --out demo-out

# the browser tests drive Debian's Chromium (Playwright's own download cannot work here)
chromium:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

test: $(STAMP) chromium
	$(BIN)/python -m ruff check src tests bench recipes
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/python -m ruff check src tests bench recipes

bench: $(STAMP)
	$(BIN)/python -m bench $(or $(BENCH),all)

clean:
	rm -rf $(VENV) demo-out
