# `make run` and `make test` each do their own set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_PORT ?= 8765
export DEMO_PORT

.PHONY: setup run test test-unit test-integration test-k8s lint bench-overhead bench-gate-accuracy \
	bench-worker-capacity chart-readme lock clean

TOOLS := .tools
# helm: a HELM_BIN you set wins; otherwise set-up installs it into .tools/bin (scripts/ensure-helm.sh)
USER_HELM_BIN := $(HELM_BIN)
export HELM_BIN := $(if $(USER_HELM_BIN),$(USER_HELM_BIN),$(CURDIR)/$(TOOLS)/bin/helm)

setup: $(VENV)/.installed
	@scripts/ensure-tool.sh prometheus prometheus PROMETHEUS_BIN
	@HELM_BIN="$(USER_HELM_BIN)" scripts/ensure-helm.sh $(TOOLS)

# The venv installs the exact, hashed set of requirements/lock.txt (every extra and dev, as CI and the
# image use), then this checkout itself without dependencies: a resolver never picks versions here.
LOCK := requirements/lock.txt
$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check --require-hashes -r $(LOCK)
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

# Regenerate the lock after a change to pyproject.toml's dependencies (tests/unit/test_lock.py checks
# it names them all): uv, from PyPI into its own venv, resolves for Python 3.11 on every platform.
lock:  ## requirements/lock.txt from pyproject.toml: all extras and dev, pinned with SHA-256 hashes
	$(PYTHON) -m venv $(TOOLS)/lock-venv
	$(TOOLS)/lock-venv/bin/pip install -q --disable-pip-version-check 'uv>=0.5,<1'
	$(TOOLS)/lock-venv/bin/uv pip compile pyproject.toml --all-extras --generate-hashes --universal \
		--python-version 3.11 --custom-compile-command "make lock" --quiet -o $(LOCK)
	# the image's: what its pods run (no dev tools, no demo), at the versions of the lock above
	$(TOOLS)/lock-venv/bin/uv pip compile pyproject.toml --extra k8s --extra probes --extra grafana \
		--generate-hashes --universal --python-version 3.11 -c $(LOCK) \
		--custom-compile-command "make lock" --quiet -o requirements/image.txt

run: setup  ## the embedded demo: demo target + `loadctl run profiles/demo.yaml`
	$(PY) -m examples.run_demo --port $(DEMO_PORT)

# The tests under tests/k8s run on a loopback Kubernetes control plane. scripts/ensure-k8s.sh builds
# its binaries from the Go module proxy the first time (~5 min on 2 cores; cached in
# ~/.cache/loadctl/envtest, KUBEBUILDER_ASSETS honoured) and prints their directory.
# `assets=$$(...) &&`: a failed build stops here instead of leaving pytest to rebuild silently.
WITH_K8S = scripts/ensure-tool.sh openssl openssl OPENSSL_BIN \
	&& assets=$$(scripts/ensure-k8s.sh) && LOADCTL_K8S_ASSETS=$$assets

test: setup
	@scripts/ensure-tool.sh prometheus-pushgateway prometheus-pushgateway PUSHGATEWAY_BIN  # run history tests
	@scripts/ensure-prometheus3.sh >/dev/null  # tests/prom_versions.py: suites run on 2.x and 3.x
	@scripts/ensure-tool.sh redis-server redis-server REDIS_SERVER_BIN
	@scripts/ensure-tool.sh chromium chromium CHROMIUM_BIN  # opens report.html headless
	@scripts/ensure-postgres.sh
	@$(WITH_K8S) $(VENV)/bin/pytest -q

test-k8s: setup  ## only tests/k8s, against the loopback control plane
	@scripts/ensure-tool.sh prometheus-pushgateway prometheus-pushgateway PUSHGATEWAY_BIN  # run history tests
	@$(WITH_K8S) $(VENV)/bin/pytest -q tests/k8s

test-unit: setup
	$(VENV)/bin/pytest -q tests/unit

test-integration: setup
	@scripts/ensure-tool.sh prometheus-pushgateway prometheus-pushgateway PUSHGATEWAY_BIN  # run history tests
	@scripts/ensure-prometheus3.sh >/dev/null  # tests/prom_versions.py: suites run on 2.x and 3.x
	@scripts/ensure-tool.sh redis-server redis-server REDIS_SERVER_BIN
	@scripts/ensure-tool.sh chromium chromium CHROMIUM_BIN  # opens report.html headless
	@scripts/ensure-postgres.sh
	$(VENV)/bin/pytest -q tests/integration

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache
	$(PY) scripts/check_functions.py

bench-overhead: setup  ## plain locust vs loadctl run throughput, against a local nginx
	@scripts/ensure-tool.sh nginx nginx-light NGINX_BIN
	$(PY) bench/overhead.py

bench-gate-accuracy: setup  ## gate values vs Locust's numbers over 15 s and 60 s windows (ARGS=--long: + 5 min)
	$(PY) bench/gate_accuracy.py $(ARGS)

# ~3.5 min: one worker, the shipped scenario, users stepped up; the capacity sets
# controller/sizing.py's MEASURED_USERS_PER_WORKER (README: Worker sizing). ARGS: --steps, --step-seconds
bench-worker-capacity: setup  ## users of the shipped scenario one worker carries below 80 % of a core
	@scripts/ensure-tool.sh nginx nginx-light NGINX_BIN
	$(PY) -m bench.worker_capacity $(ARGS)

.PHONY: bench-buckets bench-exporter
bench-buckets: setup  ## latency buckets per series vs p95/p99 error, per resolution (README: Latency buckets)
	$(PY) bench/bucket_resolution.py $(ARGS)

bench-exporter: setup  ## series, bytes and build time of one exporter scrape at 10/50/200 request names
	$(PY) bench/exporter_cost.py $(ARGS)

chart-readme: setup  ## charts/loadctl/README.md from values.yaml's `## --` comments
	$(PY) scripts/chart_readme.py

clean:
	rm -rf $(VENV) $(TOOLS) results .pytest_cache .mypy_cache .ruff_cache *.egg-info
