# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-local-llm install bench clean-db

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,local-llm]'
	touch $(STAMP)

install: $(STAMP)

# Starts (or attaches to) the embedded PostgreSQL, migrates, loads the default
# tools and templates, and serves on $$HOST:$$PORT (127.0.0.1:8000) in the foreground.
run: $(STAMP)
	$(PY) manage.py serve

# Tests of several server processes need Redis: the one on 127.0.0.1:6379, or one started here.
test: $(STAMP)
	url=$$(./scripts/ensure_redis.sh) && REDIS_TEST_URL=$$url $(PY) -m pytest $(PYTEST_ARGS)

# Opt-in: sessions of every agent kind on the real local model (installed on first use, ~93 MB).
test-local-llm: $(STAMP)
	LLM_BACKEND=local $(PY) -m pytest -m local_llm tests/local_llm $(PYTEST_ARGS)

bench: $(STAMP)
	@for f in bench/[!_]*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

# Stops the embedded database and deletes its data directory.
clean-db: $(STAMP)
	$(PY) -c "from platform_site.embedded_db import destroy; destroy()"
