# AutoPeri: the one entry point. `make demo` runs the main job, `make test` the tests.
SHELL := /bin/bash
PYTHON_BIN ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SOURCE_ROOTS := libs/xtal libs/autoperi_data libs/autoperi_potential libs/periodic libs/featurize libs/autoperi_eval libs/autoperi_model \
	libs/storage libs/svc_kit apps/autoperi services/ingest services/featurestore \
	services/scorer services/sampler services/trainer services/loop build/gen/python
SERVICE_PROJECTS := $(patsubst %/pyproject.toml,%,$(wildcard services/*/pyproject.toml))
PROTO_FILES := $(shell find protos -name '*.proto')
PROTO_STAMP := build/gen/python/.stamp
export AUTOPERI_DATA_DIR ?= $(abspath ../shared/datasets)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup protos browser test test-all lint format demo bench fuzz soak serve clean lock pants-check

setup: $(STAMP)
	@$(PY) infra/dev/write_pth.py $(SOURCE_ROOTS)

# torch first (the pinned CPU wheel), then the locked stack constrained to that torch.
# Each service's pyproject.toml declares its commands (entry points) to the `autoperi` application.
$(STAMP): requirements.lock pyproject.toml $(addsuffix /pyproject.toml,$(SERVICE_PROJECTS))
	@test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . \
		$(addprefix -e ,$(SERVICE_PROJECTS))
	@touch $(STAMP)

# Regenerate the lock from requirements.in (run after changing requirements.in).
lock:
	$(PY) -m pip install --quiet -r requirements.in -c constraints.txt
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' | sort > requirements.lock

protos: $(PROTO_STAMP)

$(PROTO_STAMP): $(PROTO_FILES) infra/protos/gen_protos.py $(STAMP)
	$(PY) infra/protos/gen_protos.py
	@touch $(PROTO_STAMP)

# Headless Chromium + ChromeDriver (Debian's packages) for the explorer page's browser test
# (apps/autoperi/autoperi_app/explore_browser_test.py); installed only when missing.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		command -v apt-get > /dev/null || { echo "make browser: no apt-get; install chromium and chromedriver (/usr/bin/chromium, /usr/bin/chromedriver) by hand" >&2; exit 1; }; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

# The layering contracts (import-linter, pyproject.toml) run first in both test targets, so CI
# checks them too.
test: setup protos browser
	$(VENV)/bin/lint-imports --no-logo
	$(PY) -m pytest -q -m "not slow" --timeout=900

test-all: setup protos browser
	$(VENV)/bin/lint-imports --no-logo
	$(PY) -m pytest -q --timeout=3600

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

demo: setup protos
	$(VENV)/bin/autoperi demo

# The whole stack on this machine (Ray + every service) until Ctrl-C; see infra/local/README.md.
serve: setup protos
	$(VENV)/bin/autoperi stack

# Every benchmark, each against a baseline measured in the same run; results in reports/bench/.
bench: setup protos
	$(VENV)/bin/autoperi bench graph
	$(VENV)/bin/autoperi bench train --config libs/autoperi_model/configs/perov_5_csp.yaml
	$(VENV)/bin/autoperi bench sample --checkpoint checkpoints/perov_5_csp
	$(VENV)/bin/autoperi bench sample --checkpoint checkpoints/mp_20_templates --split "mp_20:test[0:1000]" --baseline checkpoints/mp_20_csp
	$(VENV)/bin/autoperi sample --checkpoint checkpoints/mp_20_dng --dng --n 200 --seed 0 --out build/bench/mp_20_dng_samples
	$(VENV)/bin/autoperi bench score --samples build/bench/mp_20_dng_samples
	$(VENV)/bin/autoperi bench serve

# Robustness, each failing (exit 1) on any finding; results in reports/bench/. fuzz: mutated CIF
# files through the reader (crashes, hangs > 5 s) and a real ingest server (statuses, partial
# commits) -> fuzz.md; soak: mixed unary/stream sampler requests, 10 % bad, at 64 clients (lost,
# duplicated, refusals, p50/p99) -> soak.md. Small versions: `make test` runs the fuzz
# (autoperi_app/fuzz_test.py), `make test-all` the soak too (soak_test.py, marked slow).
fuzz: setup protos
	$(VENV)/bin/autoperi bench fuzz --reader-inputs 100000 --ingest-inputs 5000

soak: setup protos
	$(VENV)/bin/autoperi bench soak --checkpoint checkpoints/perov_5_csp --requests 10000 --clients 64

# Pants 2.17.1 (the last PyPI release) needs Python 3.9; it checks the BUILD files describe the same targets.
PANTS_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.9*/bin/python3.9) python3.9)
PANTS := build/pants-venv/bin/pants --no-pantsd

build/pants-venv/bin/pants:
	$(PANTS_PYTHON) -m venv build/pants-venv
	build/pants-venv/bin/pip install --quiet --disable-pip-version-check pantsbuild.pants==2.17.1

pants-check: build/pants-venv/bin/pants
	$(PANTS) list :: > /dev/null
	$(PANTS) tailor --check ::
	$(PANTS) dependencies :: > /dev/null

clean:
	rm -rf build .pytest_cache .ruff_cache
