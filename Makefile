# Paretoscope. `make run` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DB ?= data/runs.duckdb
PORT ?= 8501

.PHONY: run test bench install db clean

$(VENV)/.installed: requirements.txt requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	touch $@

install: $(VENV)/.installed

db: install
	PARETOSCOPE_DB=$(DB) $(PY) -m engine init

run: db
	PARETOSCOPE_DB=$(DB) $(VENV)/bin/streamlit run app.py --server.port $(PORT) --server.address localhost

# Two workers (pytest-xdist), each taking whole test files: 7.9 min instead of 11 on a 2-core machine.
test: install
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n 2 --dist loadfile tests

# `make bench search quick` (or `make bench search -- --quick`): the words after bench go to it
ifeq (bench,$(firstword $(MAKECMDGOALS)))
BENCH_ARGS := $(wordlist 2,$(words $(MAKECMDGOALS)),$(MAKECMDGOALS))
$(eval $(BENCH_ARGS):;@:)
endif

bench: install
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DB) $(DB).wal data/cache
