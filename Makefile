# One verb per job. `make up` (the whole system locally; `make down`, `make status`, `make demo` on
# top of it) and `make test` are the README's commands; they install what they need first
# (virtualenvs, bundles, helm, prometheus, alertmanager) so they work on a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY        ?= python3
VENV      := .venv
VENV_DRIFT:= .venv-drift
BIN       := $(VENV)/bin
DBIN      := $(VENV_DRIFT)/bin
TOOLS     := .tools
BUNDLES   := .bundles
# setuptools' "compat" editable mode puts each component folder on sys.path, so running
# from the repo root never mistakes the folder `predictor/` for the package.
EDITABLE  := --no-deps --config-settings editable_mode=compat -e
SERVING_PKGS := serving-common training predictor transformer explainer rollout
SERVING_REQS := requirements-dev.txt $(foreach p,$(SERVING_PKGS),$(wildcard $(p)/requirements.txt))
DRIFT_REQS   := serving-common/requirements.txt $(wildcard drift-detector/requirements.txt)

# make up/down/status: the whole system on loopback (manifests/local/local_stack), derived from the chart
STACK     := PYTHONPATH=$(CURDIR)/manifests/local $(BIN)/python -m local_stack

.PHONY: help install install-serving install-drift tools bundles up down status demo demo-retrain test test-serving test-drift lint bench images manifests clean

help: ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

install: install-serving install-drift ## create both virtualenvs (.venv for serving, .venv-drift for alibi-detect)

$(BIN)/.installed: $(SERVING_REQS)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(foreach r,$(SERVING_REQS),-r $(r))
	for p in $(SERVING_PKGS); do $(BIN)/pip install -q $(EDITABLE) $$p || exit 1; done
	touch $@

install-serving: $(BIN)/.installed

$(DBIN)/.installed: $(DRIFT_REQS)
	test -x $(DBIN)/python || $(PY) -m venv $(VENV_DRIFT)
	$(DBIN)/pip install -q --upgrade pip
	$(DBIN)/pip install -q $(foreach r,$(DRIFT_REQS),-r $(r))
	for p in serving-common $(if $(wildcard drift-detector/pyproject.toml),drift-detector); do $(DBIN)/pip install -q $(EDITABLE) $$p || exit 1; done
	touch $@

install-drift: $(DBIN)/.installed

tools: ## helm, kubectl, prometheus and promtool into .tools/bin
	bash tests/tools/install-tools.sh $(TOOLS)

$(BUNDLES)/gbm/model.onnx: $(BIN)/.installed
	$(BIN)/python -m training --model gbm --out $(BUNDLES)/gbm
$(BUNDLES)/mlp/model.onnx: $(BIN)/.installed
	$(BIN)/python -m training --model mlp --out $(BUNDLES)/mlp

bundles: $(BUNDLES)/gbm/model.onnx $(BUNDLES)/mlp/model.onnx ## train both model bundles (once)

up: install bundles tools ## the whole system on loopback behind Envoy (ports: README); returns when ready
	$(STACK) up

down: ## stop everything `make up` started (nothing is left running)
	$(STACK) down

status: ## the local stack's processes, readiness, routes and endpoints
	$(STACK) status

.PHONY: trace
trace: ## the newest trace of the local stack as a span tree (TRACE=<trace id> for another one)
	$(STACK) trace $(TRACE)

RETRAIN_DEMO_ENV := {"retrain-trigger": {"ROLLOUT_STEPS": "25,50,100", "ROLLOUT_INTERVAL": "10s", "ROLLOUT_WINDOW": "20s", "ROLLOUT_MIN_REQUESTS": "2", "ROLLOUT_MIN_LABELLED": "50"}}

demo-retrain: install bundles tools ## the retraining loop, narrated: make up with retraining on, drift -> retrain -> canary -> gated promotion
	STACK_RETRAINING=true STACK_EXTRA_ENV='$(RETRAIN_DEMO_ENV)' $(STACK) up
	$(BIN)/python tests/tools/retrain_demo.py

demo: up ## a narrated scenario on top of `make up`: predictions, pins, explanation, rollout, fault, drift
	$(STACK) demo

test: install tools ## every test (both virtualenvs)
	PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" $(BIN)/python -m pytest tests
	$(if $(wildcard tests/drift_detector/unit),PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" $(DBIN)/python -m pytest tests/drift_detector/unit)
	$(if $(wildcard tests/feedback/unit),PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" $(DBIN)/python -m pytest tests/feedback/unit)

lint: install ## ruff, mypy and the package boundaries (import-linter contracts in pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	PYTHONPATH=drift-detector $(BIN)/lint-imports --no-logo

# Every bench runs even when one fails; a bench fails on any error answer, socket error, timeout
# or failed sanity check (never on a missed target, printed as MISS). BENCH_DURATION: seconds per
# timed run (short by default; the machine is shared). BENCH_PROFILE=DIR: py-spy profiles of the
# chain's processes at c8 into DIR (py-spy on PATH). The previous chain run is kept as the
# baseline of the chain's c1 check (bench-results/chain-previous.json).
BENCH_DURATION ?= 3
BENCH_PROFILE  ?=
BENCHES := predictor chain explainer $(if $(wildcard tests/bench/bench_drift.py),drift) \
           $(if $(wildcard tests/bench/bench_logging.py),logging) \
           $(if $(wildcard tests/bench/bench_batch.py),batch)
BENCH_ARGS_predictor := --bundle $(BUNDLES)/gbm --duration $(BENCH_DURATION)
BENCH_ARGS_chain     := --bundle $(BUNDLES)/gbm --duration $(BENCH_DURATION) $(if $(BENCH_PROFILE),--profile $(BENCH_PROFILE))
BENCH_ARGS_explainer := --bundle $(BUNDLES)/gbm
BENCH_ARGS_batch     := --bundle $(BUNDLES)/gbm --duration $(BENCH_DURATION)

bench: install bundles ## predictor vs naive and raw onnxruntime; transformer chain; explainer; drift; logging; batch
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
	@mkdir -p bench-results && if [ -f bench-results/chain.json ]; then mv -f bench-results/chain.json bench-results/chain-previous.json; fi
	@rm -f bench-results/predictor.json bench-results/explainer.json
	@failed=""; \
	for b in $(BENCHES); do \
	  echo "== bench $$b"; \
	  case $$b in \
	    predictor) args="$(BENCH_ARGS_predictor)";; chain) args="$(BENCH_ARGS_chain)";; \
	    explainer) args="$(BENCH_ARGS_explainer)";; batch) args="$(BENCH_ARGS_batch)";; *) args="";; \
	  esac; \
	  $(BIN)/python tests/bench/bench_$$b.py $$args || failed="$$failed $$b"; \
	done; \
	$(BIN)/python tests/bench/summary.py --ran $(BENCHES) --failed $$failed

IMAGE_PREFIX ?= model-serving
IMAGE_TAG    ?= 0.1.0
# Debian's client when there is one: it builds with the daemon's BuildKit without the buildx plugin
DOCKER       ?= $(firstword $(wildcard /usr/bin/docker) docker)
IMAGES       := predictor transformer explainer drift-detector rollout training

images: ## build every component image (build context = repo root; IMAGE_PREFIX, IMAGE_TAG)
	@for c in $(IMAGES); do \
	  echo "== $(IMAGE_PREFIX)/$$c:$(IMAGE_TAG)"; \
	  DOCKER_BUILDKIT=1 $(DOCKER) build $(DOCKER_BUILD_ARGS) -f $$c/Dockerfile -t $(IMAGE_PREFIX)/$$c:$(IMAGE_TAG) . || exit 1; \
	done

manifests: install-serving tools ## render manifests/ from the chart's defaults (copies drift alerts into the chart)
	$(BIN)/python tests/tools/render_manifests.py

clean: ## remove virtualenvs, tools, bundles and caches
	rm -rf $(VENV) $(VENV_DRIFT) $(TOOLS) $(BUNDLES) .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
