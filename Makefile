# make test: a fresh clone with only python3 and make -> .venv, install with the test extra, lint, test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-test

.PHONY: test lint pytest bench clean serve

STORAGE_EXAMPLE := examples/plugins/butterflyfx-storage-example

# The example storage plugin is installed beside the server, as a user installs a plugin;
# tests/test_storage_plugin_example.py serves it end to end (editable: its code is the folder's).
$(STAMP): pyproject.toml $(STORAGE_EXAMPLE)/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' -e ./$(STORAGE_EXAMPLE)
	touch $(STAMP)

test: lint pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	mkdir -p .typecheck/butterflyfx && ln -sfn ../../kernel .typecheck/butterflyfx/kernel && ln -sfn ../../core .typecheck/butterflyfx/core && ln -sfn ../../interface .typecheck/butterflyfx/interface
	MYPYPATH=.typecheck $(BIN)/mypy --strict --explicit-package-bases -p butterflyfx.kernel -p butterflyfx.core -p butterflyfx.interface

# The suite runs on every core (pytest-xdist), a test file to a worker: a file's module-scoped
# servers stay in one process. PYTEST_WORKERS=0 runs it in this process alone.
PYTEST_WORKERS ?= auto

pytest: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

# make bench: kernel, HTTP, graph and start-up benchmarks (see docs/performance.md). The HTTP rows:
# BENCH_ENGINES=sqlite,postgres,redis (default) and BENCH_INSTANCES=2 (0: no two-instance row);
# a row whose PostgreSQL or Redis does not answer is skipped with the reason.
bench: $(STAMP)
	$(BIN)/pytest bench --benchmark-enable --benchmark-only --benchmark-columns=min,median,ops,rounds
	$(BIN)/python bench/http/run.py
	$(BIN)/python bench/graph/run.py
	$(BIN)/python bench/runtime/run.py
	$(BIN)/python bench/cli/import_run.py

# make serve ARGS="--port 9000 --workers 2": the server on the embedded defaults (data in ./butterflyfx-data)
serve: $(STAMP)
	$(BIN)/butterflyfx serve $(ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis .benchmarks
