# The targets people expect. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Two installs into one virtualenv: what the running product needs (requirements.txt,
# for `make run`, `web`, `worker`, `beat`) and the development tools on top
# (requirements-dev.txt, for `make test`, `lint`, `typecheck`). Each stamp names the
# checksum of its files, so an edited requirement installs again.
RUN_STAMP := $(VENV)/.installed-run-$(shell cat requirements.txt constraints.txt requirements-install.txt | cksum | cut -d' ' -f1)
DEV_STAMP := $(VENV)/.installed-dev-$(shell cat requirements.txt requirements-dev.txt constraints.txt requirements-install.txt | cksum | cut -d' ' -f1)

# The test suite's PostgreSQL database and Redis database number; override to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/app
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15

.PHONY: install install-dev run test lint typecheck format migrations-check check bench bench-replay bench-venv worker beat services static web clean

install: $(RUN_STAMP)

install-dev: $(DEV_STAMP)

$(RUN_STAMP): requirements.txt constraints.txt requirements-install.txt
	PYTHON="$(PYTHON)" VENV="$(VENV)" bin/install-requirements run
	rm -f $(VENV)/.installed-run-*
	touch $@

$(DEV_STAMP): $(RUN_STAMP) requirements-dev.txt
	PYTHON="$(PYTHON)" VENV="$(VENV)" bin/install-requirements dev
	rm -f $(VENV)/.installed-dev-*
	touch $@

## Set everything up on SQLite, get candles, replay them, create an admin, serve on :8000.
## CANDLES=path loads a file instead of fetching from the exchange; SYMBOL, TIMEFRAME,
## SINCE and UNTIL choose the market and the window (make exports its variables).
export CANDLES SYMBOL SYMBOLS TIMEFRAME EXCHANGE SINCE UNTIL DEMO_CANDLES
run: install
	PY="$(PY)" bin/run-demo

# Test processes (pytest-xdist): each has its own database (test_app_gw0, ...) and Redis
# database (15, 14, ...); a file's tests stay in one process, the files in conftest.py's
# SLOW_FILES first (--no-loadscope-reorder keeps that order). Four on two cores: most slow
# tests wait on processes they started. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 4

## The whole suite against PostgreSQL and Redis on 127.0.0.1.
test: install-dev services
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

services:
	bin/ensure-services

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: install-dev
	$(VENV)/bin/mypy .

migrations-check: install-dev
	DJANGO_SETTINGS_MODULE=config.settings_test DATABASE_URL=sqlite:///:memory: $(PY) manage.py makemigrations --check --dry-run

## Everything CI checks.
check: lint typecheck migrations-check test

## Replay on PostgreSQL and SQLite against backtesting.py (its own venv, var/bench-venv)
## and a bare numpy loop, then the live path through a Celery worker; one table, minutes.
## The pages at BENCH_PAGES_SIGNALS (1,000,000) signals against hand-written SQL, and under load.
## BENCH_SIZES=2000 BENCH_LIVE_CANDLES=100 BENCH_PAGES_SIGNALS=20000 for a quick run;
## BENCH_SKIP=pg,sqlite,bt,floor,live,pages.
bench: install-dev services bench-venv
	$(PY) benchmarks/run.py

## The replay alone: load_candles + replay against backtesting.py and the floor running the
## same book, trade counts and P&L compared before any ratio (docs/performance.md's table).
## BENCH_SIZES=9k,90k,900k BENCH_REPEAT=5 (defaults 9k,90k and 5); BENCH_SKIP=sqlite.
bench-replay: install-dev services bench-venv
	$(PY) benchmarks/replay_bench.py

bench-venv:
	test -x var/bench-venv/bin/python || $(PYTHON) -m venv var/bench-venv
	cmp -s benchmarks/requirements.txt var/bench-venv/requirements.txt || { \
	  var/bench-venv/bin/python -m pip install -q --upgrade pip && \
	  var/bench-venv/bin/python -m pip install -q -r benchmarks/requirements.txt && \
	  cp benchmarks/requirements.txt var/bench-venv/requirements.txt; }

## Production: collect the static files (needed once per deploy with DEBUG off), serve.
static: install
	$(PY) manage.py collectstatic --noinput

web: static
	DATABASE_CONN_MAX_AGE=$${DATABASE_CONN_MAX_AGE:-60} $(VENV)/bin/gunicorn config.wsgi -b $${BIND:-127.0.0.1:8000} -w $${WORKERS:-4}

worker: install
	$(VENV)/bin/celery -A config worker -l info -Q default,market_data,signals,shadow,analytics,alerts

beat: install
	$(VENV)/bin/celery -A config beat -l info

clean:
	rm -rf $(VENV) var
