# Loom's developer entry points. Every target installs what it needs first, so a fresh clone
# works with only npm, Go and apt available. Node 24 comes from the `node` npm package pinned in
# devDependencies: putting node_modules/.bin first on PATH makes it the `node` every recipe uses.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
LOOM_CACHE ?= $(HOME)/.cache/loom
export LOOM_CACHE

.PHONY: all deps test-deps build run test test-unit lint format bench clean

all: build

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.installed
	@bash hack/install-system-deps.sh

# Test-only servers, built or fetched into $(LOOM_CACHE) (never into the repository).
test-deps: deps
	@bash hack/openbao.sh
	@bash hack/control-plane.sh
	@bash hack/atproto-peers.sh

build: deps
	npm run build

# The spindle with the local engine and SQLite under ./.loom/; dev defaults need no configuration.
run: build
	node dist/cli/main.js serve --dev

test: test-deps build
	npm test

test-unit: node_modules/.installed
	npm run test:unit

lint: node_modules/.installed
	npm run lint

format: node_modules/.installed
	npm run format

bench: build
	node bench/run.ts

# Kubebuilder-style targets. The CRD is generated from the TypeScript schema (src/api) and committed;
# `make lint` fails when the committed file drifts from the schema.
.PHONY: manifests install uninstall deploy undeploy
manifests: node_modules/.installed
	npm run manifests

install: manifests
	kubectl apply --server-side -k config/crd

uninstall:
	kubectl delete -k config/crd --ignore-not-found

# CRD + RBAC + the Loom Deployment (config/default). IMG=registry/loom:tag sets the image.
# First: set server.hostname and server.owner in config/manager/config.yaml and create the
# secrets key (README "Install on a cluster").
IMG ?=
deploy: manifests
	kubectl apply --server-side -k config/default
	$(if $(IMG),kubectl -n loom set image deployment/loom loom=$(IMG))

undeploy:
	kubectl delete -k config/default --ignore-not-found --wait=false

clean:
	rm -rf dist node_modules .loom

# --- Kubernetes control plane for tests (see hack/control-plane.sh) ---
.PHONY: control-plane dev-cluster
control-plane:
	bash hack/control-plane.sh

dev-cluster: build control-plane
	node hack/dev-cluster.ts
