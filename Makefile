# ipslib: `make book` builds the reproducibility book, `make test` runs the test suite.
# Both bootstrap .venv (Python 3.11 + pip) on first use; nothing else needs installing by hand.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
JOBS ?= 1
STAMP := $(VENV)/.ipslib-installed

.PHONY: help env lint test test-fast book results bench clean-book browser constraints notebook

help:
	@echo "make book [PROFILE=cpu|smoke|paper]  run what is missing for PROFILE, then build the HTML book"
	@echo "make test                            lint (ruff) and run the whole test suite (bootstraps .venv)"
	@echo "make bench                           run the benchmarks, results under outputs/benchmarks/"
	@echo "make notebook                        JupyterLab on the notebook templates (installs the notebook extra)"

env: $(STAMP)

# constraints.txt: the versions the book was built with (pip freeze of our .venv; `make constraints` rewrites it)
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[report,dev,cluster]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

test: $(STAMP) browser lint
	TQDM_DISABLE=1 $(PY) -m pytest -q

# ruff: the lint rules and the formatting of pyproject.toml's [tool.ruff]
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# The book's page test drives Debian's chromium; installed here when missing and we may use apt.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium and chromium-driver (apt)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "note: install chromium and chromium-driver to run the browser test"; fi; }

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

# JupyterLab on the notebook templates (the `notebook` extra; jupytext opens the MyST .md files as notebooks)
notebook: $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[notebook]"
	$(VENV)/bin/jupyter lab book/templates $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

constraints: $(STAMP)
	@head -3 constraints.txt > constraints.txt.new
	$(PY) -m pip freeze --exclude-editable >> constraints.txt.new
	mv constraints.txt.new constraints.txt
