# make test: a fresh clone with only python3 and make -> .venv, install with the test extra, lint, test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-test

.PHONY: test lint pytest bench clean serve

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: lint pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	mkdir -p .typecheck/butterflyfx && ln -sfn ../../kernel .typecheck/butterflyfx/kernel && ln -sfn ../../core .typecheck/butterflyfx/core
	MYPYPATH=.typecheck $(BIN)/mypy --strict --explicit-package-bases -p butterflyfx.kernel -p butterflyfx.core

pytest: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/pytest bench --benchmark-enable --benchmark-only --benchmark-columns=min,median,ops,rounds
	$(BIN)/python bench/http/run.py
	$(BIN)/python bench/graph/run.py
	$(BIN)/python bench/runtime/run.py

# make serve ARGS="--port 9000 --workers 2": the server on the embedded defaults (data in ./butterflyfx-data)
serve: $(STAMP)
	$(BIN)/butterflyfx serve $(ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis .benchmarks
