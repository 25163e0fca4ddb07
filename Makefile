# On a fresh machine: `make demo`, `make test` (the fast suite, under 2 minutes on 2 cores) and
# `make test-all` (everything, including the tests marked slow). Each creates .venv and installs
# what it needs. torch is pinned to 2.13.0 here (a CPU build on our machines; a looser pin pulls a
# multi-GB CUDA build); pyproject.toml declares torch>=2.4 for users elsewhere.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all install clean lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/crystograph demo

test: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/pytest -q -m "not slow"

test-all: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/python -c "import ruff" 2>/dev/null || $(BIN)/pip install --quiet -e '.[test,lint]'
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs
