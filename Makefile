# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-fast test-e2e bootstrap venv bench addon clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

bootstrap:
	bash scripts/bootstrap

demo: bootstrap venv
	$(PY) scripts/demo.py

test: bootstrap venv
	FLAMENCO_TEST_POSTGRES=$$(bash scripts/postgres-for-tests) $(PY) -m pytest tests

test-fast: venv
	$(PY) -m pytest tests/unit tests/integration -m "not e2e and not browser"

bench: venv
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

addon: venv
	$(PY) build_addon.py

clean:
	rm -rf $(VENV) dist build *.egg-info .pytest_cache
