# A thin layer over go and npm. `make run` starts the gateway on the embedded
# store; `make test` installs every test dependency and runs every test.

GO      ?= go
NPM_DIR := testdata/npm
BIN     := bin/connectors
ADDR    ?= 127.0.0.1:3000

.PHONY: all build run test test-deps vet clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/connectors

run: build
	$(BIN) serve --addr $(ADDR)

# Node 22, the MCP Inspector, the conformance suite and the real upstream MCP
# servers, pinned by testdata/npm/package-lock.json. Reinstalled only when
# the lock file changes.
test-deps: $(NPM_DIR)/node_modules/.installed

$(NPM_DIR)/node_modules/.installed: $(NPM_DIR)/package.json $(NPM_DIR)/package-lock.json
	cd $(NPM_DIR) && npm install --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

vet:
	$(GO) vet ./... ./testdata/upstream-env ./testdata/upstream-conformance

test: test-deps vet
	$(GO) test -race -count=1 -timeout 20m ./...

clean:
	rm -rf bin $(NPM_DIR)/node_modules
