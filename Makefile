# A thin layer over go and npm. `make run` starts the gateway on the embedded
# store; `make test` installs every test dependency and runs every test.

GO      ?= go
NPM_DIR := testdata/npm
BIN     := bin/connectors
ADDR    ?= 127.0.0.1:3000

.PHONY: all build run test test-deps vet bench screenshots clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/connectors

run: build
	$(BIN) serve --addr $(ADDR)

# The development Vault server (testdata/vaultdev, a module of its own so the
# product's go.mod never carries Vault's server code): KV v2 at secret/,
# Transit at transit/, AppRole, and the gateway's policies, in memory on
# loopback. Built into .cache once; rebuilt only when its sources change. The
# first build compiles about 1,500 packages (5-10 minutes on 2 cores). Its
# requirements are pinned: vault v1.19.5 with vault/sdk v0.17.0 and vault/api
# v1.16.0 (newer vault releases need an sdk that was never published), and
# go mod tidy there raises sdk, which breaks the build: never run it there;
# build with -mod=mod.
VAULTDEV      := .cache/vaultdev/vaultdev
VAULTDEV_ADDR ?= 127.0.0.1:8200

$(VAULTDEV): $(wildcard testdata/vaultdev/*.go testdata/vaultdev/go.*)
	cd testdata/vaultdev && $(GO) build -mod=mod -o $(CURDIR)/$@ .

.PHONY: vault-dev
vault-dev: $(VAULTDEV)
	$(VAULTDEV) -addr $(VAULTDEV_ADDR) -log-level info \
		-policy gateway-service=vault/hashicorp/policies/gateway-service-policy.hcl \
		-policy gateway-admin=vault/hashicorp/policies/gateway-admin-policy.hcl

# The chart checker (testdata/helmcheck, a module of its own so the
# product's go.mod never carries Helm, Kubernetes or Compose): lints and
# renders deploy/helm/connectors with Helm's Go packages and loads
# docker-compose.yml with the Compose loader, for deploy/deploy_test.go.
# Rebuilt only when its sources change; the first build compiles about
# 700 packages (several minutes on 2 cores).
HELMCHECK := .cache/helmcheck/helmcheck

$(HELMCHECK): $(wildcard testdata/helmcheck/*.go testdata/helmcheck/go.*)
	cd testdata/helmcheck && $(GO) build -o $(CURDIR)/$@ .

.PHONY: helmcheck
helmcheck: $(HELMCHECK)

# Node 22, the MCP Inspector, the conformance suite and the real upstream MCP
# servers, pinned by testdata/npm/package-lock.json. Reinstalled only when
# the lock file changes; npm ci installs exactly the lock file and never
# rewrites it (npm install did, leaving git status dirty).
test-deps: $(NPM_DIR)/node_modules/.installed $(VAULTDEV) chromium haproxy promtool $(HELMCHECK)

# Debian packages the tests run for real, installed when missing if we are
# root; otherwise we say what to install. $(call debian,PACKAGE,CHECK):
# CHECK is the shell test that the package is there.
define debian
	@$(2) || \
	if [ "$$(id -u)" = 0 ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(1); \
	else \
		echo "make test-deps: $(1) is missing. Install it first (as root: apt-get install $(1)," >&2; \
		echo "or your distribution's $(1) package) so that \`$(1)\` is on PATH." >&2; \
		exit 1; \
	fi
endef

# Headless Chromium for the account-linking tests in a real browser
# (cmd/connectors/consent_test.go).
.PHONY: chromium
chromium:
	$(call debian,chromium,command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1)

# HAProxy, the load balancer in front of several gateway replicas in the
# tests (internal/testenv.HAProxy).
.PHONY: haproxy
haproxy:
	$(call debian,haproxy,command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ])

# Prometheus's promtool, which checks and unit-tests the alerting rules in
# deploy/prometheus (deploy/observability_test.go).
.PHONY: promtool
promtool:
	$(call debian,prometheus,command -v promtool >/dev/null 2>&1)

$(NPM_DIR)/node_modules/.installed: $(NPM_DIR)/package.json $(NPM_DIR)/package-lock.json
	cd $(NPM_DIR) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

vet:
	$(GO) vet ./... ./testdata/upstream-env ./testdata/upstream-conformance ./testdata/upstream-echo ./testdata/upstream-hostile

test: test-deps vet
	$(GO) test -race -count=1 -timeout 25m ./...

# Benchmarks (never part of make test): the gateway's cost per call beside a
# direct call and a bare reverse proxy (HTTP and stdio upstreams, embedded
# store and Vault, with and without the direct path, several concurrencies),
# scale runs and the refresh scheduler; about 10 minutes.
# The report replaces BENCHMARKS.md. BENCH_FLAGS adds flags, for example
# BENCH_FLAGS="-bench.duration=2s -bench.conc=1,16 -bench.scale=1000".
BENCH_FLAGS ?=
bench: test-deps
	$(GO) test ./bench -run '^$$' -bench . -benchtime 1x -timeout 60m \
		-args -bench.out=$(CURDIR)/BENCHMARKS.md -bench.command="make bench $(BENCH_FLAGS)" $(BENCH_FLAGS)

# The console's screenshots in docs/screenshots (shown in the README), made
# by the console's browser tests; make test writes them to a temp dir.
screenshots: test-deps
	CONNECTORS_SCREENSHOTS=docs/screenshots $(GO) test -count=1 -run '^TestConsole' ./cmd/connectors

clean:
	rm -rf bin $(NPM_DIR)/node_modules
