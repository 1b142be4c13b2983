# kuaishu — the two commands: `make demo` and `make test`. Everything else is their plumbing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: demo test install install-dev system-test-deps lint typecheck serve clean

demo: install  ## install, build the demo platform and serve it at http://127.0.0.1:8000
	$(BIN)/kuaishu demo --host $(HOST) --port $(PORT)

test: install-dev system-test-deps  ## install, lint, type-check, start PostgreSQL, run every test on SQLite and PostgreSQL
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	@url=$$(./scripts/postgres.sh | tail -n 1); \
	KUAISHU_TEST_POSTGRES_URL=$$url $(BIN)/python -m pytest -n 2 --dist loadgroup -p no:cacheprovider $(PYTEST_ARGS)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Debian packages the tests drive for real: PostgreSQL (started by scripts/postgres.sh) and Chromium.
system-test-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	fc-list 2>/dev/null | grep -qi "cjk\|wqy" || missing="$$missing fonts-noto-cjk"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install-dev
	$(BIN)/mypy

serve: install
	$(BIN)/kuaishu serve --host $(HOST) --port $(PORT)

clean:
	rm -rf $(VENV) kuaishu-data .pytest_cache .mypy_cache .ruff_cache
