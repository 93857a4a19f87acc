# Résorption — the few commands a developer or CI needs.
#   make demo    install, prepare the database (embedded unless DATABASE_URL is set), serve on :5000
#   make test    install, add the Debian tools the tests drive (PostGIS, GDAL, QGIS, Chromium), run pytest
# Extra pytest arguments: make test PYTEST_ARGS='-k items -x'

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

# Debian packages the test suite drives (PostGIS server, ogrinfo, QGIS, headless browser).
SYSTEM_PACKAGES := postgresql-15-postgis-3 gdal-bin python3-qgis qgis-providers chromium chromium-driver mosquitto

.PHONY: help venv db demo test system-deps lint clean-db bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## create .venv (Python >= 3.12) and install the package with its test tools

# Re-installs only when pyproject.toml changes. Python >= 3.12 comes from pyenv on our machines.
$(VENV)/.installed: pyproject.toml
	@py=""; \
	for candidate in "env PYENV_VERSION=3.12.1 python3.12" python3.12 python3.13 python3; do \
		if $$candidate -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
			py=$$($$candidate -c 'import sys; print(sys.executable)'); break; \
		fi; \
	done; \
	if [ -z "$$py" ]; then echo "Python >= 3.12 introuvable (essayé : pyenv 3.12.1, python3.12, python3.13, python3)." >&2; exit 1; fi; \
	echo "Python : $$py"; \
	[ -x $(BIN)/python ] || "$$py" -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

db: venv ## migrate and load territories + demo data (embedded PostGIS unless DATABASE_URL is set)
	$(BIN)/resorption db setup

demo: db ## prepare everything, then serve http://localhost:5000 (and publish the changes on MQTT)
	$(BIN)/resorption mqtt start
	$(BIN)/resorption publish & exec $(BIN)/resorption serve

# The venv (pip) and the Debian tools (apt) install side by side: on a fresh machine each
# takes about two minutes, and neither needs the other.
test: ## run the test suite (it prepares its own database)
	$(MAKE) --no-print-directory -j2 venv system-deps
	$(BIN)/pytest --durations=30 $(PYTEST_ARGS)

# Installs only what dpkg says is missing; apt-get update only then.
system-deps: ## install the Debian packages the tests need, when missing
	@missing=""; \
	for pkg in $(SYSTEM_PACKAGES); do \
		dpkg -s "$$pkg" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$pkg"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "Paquets Debian manquants :$$missing" >&2; \
		echo "Installez-les : sudo apt-get install -y$$missing" >&2; exit 1; \
	fi; \
	echo "Installation des paquets Debian :$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -q && apt-get install -y -q $$missing

lint: venv ## ruff
	$(BIN)/ruff check .

# Extra arguments: make bench BENCH_ARGS='--sizes 100k --duration 5 --only ours,tipg'
BENCH_ARGS ?=
bench: venv ## measure against tipg, stock pygeoapi and the SQL floor (bench/RESULTS.md)
	bench/run $(BENCH_ARGS)

clean-db: ## stop the embedded PostgreSQL and delete its data (.local/postgres)
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m resorption.embedded destroy; fi
	rm -rf .local/postgres
