# The two commands of the README: `make demo` and `make test`. Both set up a virtual environment first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast protos bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	# sslyze (the probe's TLS scanner) pins an older cryptography than the nodes: it gets a venv of its own
	$(PYTHON) -m venv $(VENV)/scanner
	$(VENV)/scanner/bin/python -m pip install --quiet --disable-pip-version-check \
		"$$($(BIN)/python -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["tool"]["testbed"]["scanner"])')"
	touch $(STAMP)

# The main job: the march-peak scenario on the default network, with an HTML report in reports/.
demo: $(STAMP)
	$(BIN)/testbed run march-peak --residents 5000 --minutes 1

# Every test, on two workers (a test module stays on one: its network is its own); the slowest 25 named.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=25

# The fast tier for your own loop: unit and rule tests and those on the one shared network (under 2 minutes).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not own_network"

protos: $(STAMP)
	$(BIN)/python -m protos.build

clean:
	-$(BIN)/testbed down
	rm -rf .testbed .pytest_cache
