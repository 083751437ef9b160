# Two commands do everything:  make report  (train, execute the notebooks, write report/)
#                              make test    (quick-mode test suite, notebooks and browser included)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup report report-quick test bench lint clean sweep

setup: $(VENV)/.installed

# Debian/Ubuntu packages: the real Fashion-MNIST, and Chromium for the browser tests.
# Elsewhere, see the README (FMNIST_DATA_DIR, or torchvision's download).
$(VENV)/.installed: requirements.txt pyproject.toml
	@if command -v apt-get >/dev/null; then \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist chromium chromium-driver; \
	else echo "no apt-get: install the data yourself (README, 'Where the data comes from')"; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -r requirements.txt
	touch $@

report: setup
	$(BIN)/python -m fmnist_helpers.report

report-quick: setup
	FMNIST_QUICK=1 $(BIN)/python -m fmnist_helpers.report --quick --out report-quick

test: setup
	FMNIST_QUICK=1 $(BIN)/python -m pytest --nbmake notebooks tests

# A sweep of your own: make sweep SWEEP=my_sweep.toml [SCHEDULER=tcp://host:8786]
SWEEP ?= examples/sweep_lr.toml
sweep: setup
	$(BIN)/python -m fmnist_helpers.sweep $(SWEEP) $(if $(SCHEDULER),--scheduler $(SCHEDULER))

bench: setup
	$(BIN)/python -m fmnist_helpers.bench

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf results/quick report-quick .pytest_cache
