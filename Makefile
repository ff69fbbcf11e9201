# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-fast test-multihost bootstrap venv bench addon clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# Blender 4.5 as a Python module (PyPI `bpy`, Python 3.11 only), for the add-on test
# against a current Blender. About 370 MB to download; `make test` installs it once.
BPY_VENV := .venv-bpy
$(BPY_VENV)/.installed:
	$(PYTHON) -m venv $(BPY_VENV)
	$(BPY_VENV)/bin/pip install -q bpy==4.5.4
	touch $@

bootstrap:
	bash scripts/bootstrap

demo: bootstrap venv
	$(PY) scripts/demo.py

test: bootstrap venv $(BPY_VENV)/.installed
	FLAMENCO_TEST_POSTGRES=$$(bash scripts/postgres-for-tests) \
	FLAMENCO_BPY_PYTHON=$(CURDIR)/$(BPY_VENV)/bin/python \
	$(PY) -m pytest tests

test-fast: venv
	$(PY) -m pytest tests/unit tests/integration -m "not e2e and not browser"

# Server, Managers and workers on separate hosts (network namespaces); needs root, else skips.
test-multihost: bootstrap venv
	$(PY) -m pytest tests/multihost

# bench/end_to_end.py: the Server -> Manager path (issue 11); E2E_FLAGS="" leaves out the
# 100,000-task rows and the Manager's RSS (about a minute and a half of the few it takes).
E2E_FLAGS ?= --huge
bench: venv
	for b in bench/*.py; do echo "== $$b"; args=""; [ "$$b" = bench/end_to_end.py ] && args="$(E2E_FLAGS)"; \
		$(PY) $$b $$args || exit 1; done

addon: venv
	$(PY) build_addon.py

clean:
	rm -rf $(VENV) $(BPY_VENV) dist build *.egg-info .pytest_cache
