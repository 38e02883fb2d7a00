# The two commands a newcomer needs:  `make demo`  and  `make test`.
# Each creates the virtual environment and installs what it needs on a fresh machine.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Debian packages the tests use: kcat (an independent Kafka client), prometheus (promtool, and
# the Prometheus server `govpulse up` starts when present), chromium + chromium-driver + Thai
# fonts (the dashboard's browser test).
SYSTEM_PACKAGES := kcat prometheus chromium chromium-driver fonts-thai-tlwg
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# Two pytest-xdist workers (the machine has 2 cores; a third starved the simulator below its
# rate), a module whole on one worker so its module fixtures start once, and the slowest
# modules first (tests/conftest.py's LONGEST_FIRST) rather than xdist's order by test count.
PARALLEL := -n 2 --dist loadfile --no-loadscope-reorder

.PHONY: demo test check lint install system-packages clean

demo: install ## run the whole pipeline on the embedded stack
	$(VENV)/bin/govpulse up

test: install system-packages lint ## install everything the tests need and run them
	$(PY) -m pytest $(PARALLEL)

check: install lint ## the inner loop: unit tests and lint (no broker, no store, no browser)
	$(PY) -m pytest -q $(PARALLEL) -m "not integration and not e2e"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) .ci/typecheck.py

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "govpulse needs Python 3.11 or newer (found: $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

clean:
	rm -rf $(VENV) .govpulse .pytest_cache .ruff_cache .mypy_cache .typecheck
