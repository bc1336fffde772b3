# Two entry points a newcomer needs: `make demo` and `make test`. Each creates what it needs.
PYTHON ?= python3
VENV ?= .venv
DEMO_VENV ?= .venv-demo

.PHONY: demo test lint bench catalogs clean

# The demo installs the package non-editable, as a user would, so bundled data is proven.
$(DEMO_VENV)/.installed: pyproject.toml $(shell find audit probes templates -type f -not -name '*.pyc' 2>/dev/null)
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/pip install --quiet --upgrade pip
	$(DEMO_VENV)/bin/pip install --quiet .
	touch $@

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

demo: $(DEMO_VENV)/.installed
	cd /tmp && $(CURDIR)/$(DEMO_VENV)/bin/platform-audit --workspace $(CURDIR)/.platform-audit --reports $(CURDIR)/reports demo

test: $(VENV)/.installed
	bash scripts/install-synapse.sh >/dev/null
	$(VENV)/bin/python -m pytest -n 2 --dist load

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check audit tests bench scripts
	$(VENV)/bin/ruff format --check audit tests bench scripts
	$(VENV)/bin/mypy --strict audit
	$(VENV)/bin/python scripts/check_layers.py

# The scorecards' message catalogs: extract, update the .po files, compile the .mo files.
catalogs: $(VENV)/.installed
	$(VENV)/bin/python scripts/catalogs.py

# Benchmarks (minutes; figures and what limits them are in docs/performance.md).
bench: $(VENV)/.installed
	$(VENV)/bin/python bench/throughput.py
	$(VENV)/bin/python bench/virtual_day.py
	$(VENV)/bin/python bench/polling_cost.py

clean:
	rm -rf $(VENV) $(DEMO_VENV) .venv-synapse .platform-audit build dist
