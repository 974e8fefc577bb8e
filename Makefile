# Two commands do all the set-up on a fresh machine:
#   make run   create .venv, install actlab, run the main job (the sound preset)
#   make test  create/update .venv with the test extras, run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch is pinned to 2.13.0: on these machines that is a local CPU build (any other spec
# downloads a multi-GB CUDA build). It is installed first so nothing else pulls another.
TORCH  := torch==2.13.0
# This machine's environment sets PYTHONDONTWRITEBYTECODE=1: every Python process would
# compile actlab and the tests from source again (the suite starts dozens: its workers, the
# command line's subprocesses, the process pools' workers). Here the first one writes the
# bytecode cache and the rest read it.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test test-slow lint venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/actlab run

# One worker per core, each test file on one worker (its module fixtures made once). The
# end-to-end tests marked slow run apart (`make test-slow`; CI runs both), one at a time:
# they time signals against subprocesses, which two busy workers side by side can upset.
# One thread per test process: two workers on two cores, each with torch's default of one
# OpenMP thread per core, oversubscribe the machine, and OpenMP's spinning threads then made
# the engine tests four times slower (193 s against 42 s for six engine test files, -n 2).
test test-slow: export OMP_NUM_THREADS := 1
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n auto --dist loadfile -m "not slow"

test-slow: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m slow

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) runs .pytest_cache
