# ipslib: `make book` builds the reproducibility book, `make test` runs the test suite.
# Both bootstrap .venv (Python 3.11 + pip) on first use; nothing else needs installing by hand.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
JOBS ?= 1
STAMP := $(VENV)/.ipslib-installed

.PHONY: help env test test-fast book results bench clean-book

help:
	@echo "make book [PROFILE=cpu|smoke|paper]  run what is missing for PROFILE, then build the HTML book"
	@echo "make test                            run the whole test suite (bootstraps .venv)"
	@echo "make bench                           run the benchmarks, results under outputs/benchmarks/"

env: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[report,dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

test: $(STAMP)
	TQDM_DISABLE=1 $(PY) -m pytest -q

test-fast: $(STAMP)
	TQDM_DISABLE=1 $(PY) -m pytest -q -m "not slow"

results: $(STAMP)
	$(VENV)/bin/ipslib run all --profile $(PROFILE) --jobs $(JOBS)

book: $(STAMP)
	$(VENV)/bin/ipslib book --profile $(PROFILE) --jobs $(JOBS)

bench: $(STAMP)
	$(PY) -m benchmarks

clean-book:
	rm -rf _build
