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

deps: node_modules/.installed ## Install npm and Debian dependencies.
	@bash hack/install-system-deps.sh

# Test-only servers, built or fetched into $(LOOM_CACHE) (never into the repository).
test-deps: deps ## Build or fetch the test-only servers and cross-architecture parts into ~/.cache/loom.
	@bash hack/openbao.sh
	@bash hack/control-plane.sh
	@$(MAKE) --no-print-directory runner-cross-deps
	@bash hack/atproto-peers.sh
	@bash hack/promtool.sh

build: deps ## Compile TypeScript into dist/ and build this machine's runner bundle.
	npm run build

# The spindle with the local engine and SQLite under ./.loom/; dev defaults need no configuration.
run: build ## Run the spindle locally (local engine, state in ./.loom).
	node dist/cli/main.js serve --dev

test: test-deps build ## Run every test (the real control plane included).
	npm test

test-unit: node_modules/.installed
	npm run test:unit

lint: node_modules/.installed ## biome, tsc --noEmit and the CRD drift check.
	npm run lint

format: node_modules/.installed
	npm run format

bench: build
	node bench/run.ts

# Kubebuilder-style targets. The CRD is generated from the TypeScript schema (src/api) and committed;
# `make lint` fails when the committed file drifts from the schema.
.PHONY: manifests install uninstall deploy undeploy
manifests: node_modules/.installed ## Regenerate the CRD from the TypeScript schema.
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

# --- Runner bundles (linux/amd64 + linux/arm64) and images -------------------------------------
# Both bundles build on either machine: the other architecture's Node (npm `node-linux-*`) and
# Debian libraries are fetched into $(LOOM_CACHE) by hack/runner-cross.sh; qemu-user-static in
# binfmt_misc (hack/qemu-binfmt.sh) lets test/runner-chroot.test.ts run that bundle here.
.PHONY: runner-cross-deps runner-bundles
runner-cross-deps: deps
	@bash hack/runner-cross.sh arm64
	@bash hack/runner-cross.sh amd64
	@bash hack/qemu-binfmt.sh

runner-bundles: build runner-cross-deps ## Build dist/runner-bundle-{amd64,arm64}.
	node scripts/build-runner-bundle.ts --arch all

# Images (Dockerfile): the server (IMG) and the runner (RUNNER_IMG), each for PLATFORMS under one
# tag with docker-buildx. No container engine runs in CI here: test/image/ lays out the same files
# with scripts/image-layout.ts and starts Loom from them.
CONTAINER_TOOL ?= docker
PLATFORMS ?= linux/amd64,linux/arm64
RUNNER_IMG ?= ghcr.io/example/loom-runner:0.1.0
LOOM_IMG = $(or $(IMG),ghcr.io/example/loom:0.1.0)
.PHONY: docker-build docker-push docker-buildx build-installer help

docker-build: ## Build the server (IMG) and runner (RUNNER_IMG) images for this machine's platform.
	$(CONTAINER_TOOL) build -t $(LOOM_IMG) .
	$(CONTAINER_TOOL) build --target runner -t $(RUNNER_IMG) .

docker-push: ## Push IMG and RUNNER_IMG (built by docker-build).
	$(CONTAINER_TOOL) push $(LOOM_IMG)
	$(CONTAINER_TOOL) push $(RUNNER_IMG)

docker-buildx: ## Build and push IMG and RUNNER_IMG for PLATFORMS (linux/amd64,linux/arm64), one tag each.
	- $(CONTAINER_TOOL) buildx create --name loom-builder
	$(CONTAINER_TOOL) buildx use loom-builder
	$(CONTAINER_TOOL) buildx build --push --platform=$(PLATFORMS) --tag $(LOOM_IMG) .
	$(CONTAINER_TOOL) buildx build --push --platform=$(PLATFORMS) --target runner --tag $(RUNNER_IMG) .
	- $(CONTAINER_TOOL) buildx rm loom-builder

build-installer: manifests ## Write dist/install.yaml: config/default with IMG and RUNNER_IMG set.
	node scripts/build-installer.ts --image $(LOOM_IMG) --runner-image $(RUNNER_IMG)

help: ## Show this list (targets with a description).
	@awk 'BEGIN {FS = ":.*##"; printf "Usage:\n  make \033[36m<target>\033[0m [IMG=...] [RUNNER_IMG=...]\n\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
