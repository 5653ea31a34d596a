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
	@bash hack/chromium.sh

build: deps ## Compile TypeScript into dist/ and build this machine's runner bundle.
	npm run build

# The spindle with the local engine and SQLite under ./.loom/; dev defaults need no configuration.
run: build ## Run the spindle locally (local engine, state in ./.loom).
	node dist/cli/main.js serve --dev

test: test-deps build ## Run every test (the real control plane included).
	npm test

test-unit: node_modules/.installed ## Run the unit tests beside the code (no servers).
	npm run test:unit

lint: node_modules/.installed ## biome, tsc --noEmit and the CRD drift check.
	npm run lint

format: node_modules/.installed ## Format every file with biome.
	npm run format

bench: build ## Print the benchmark figures (ratios, with the load average).
	node bench/run.ts

# Kubebuilder-style targets. The CRD is generated from the TypeScript schema (src/api) and committed;
# `make lint` fails when the committed file drifts from the schema.
.PHONY: manifests install uninstall deploy undeploy run-cluster
KUBECTL ?= kubectl
manifests: node_modules/.installed ## Regenerate the CRD from the TypeScript schema.
	npm run manifests

install: manifests ## Install the SpindleSet CRD into the current cluster.
	$(KUBECTL) apply --server-side --field-manager=loom-deploy -k config/crd

uninstall: ## Remove the CRD (and with it every SpindleSet) from the current cluster.
	$(KUBECTL) delete -k config/crd --ignore-not-found

# CRD + RBAC + the Loom Deployment (config/default) with the image IMG=registry/loom:tag, set by a
# kustomize `images:` entry in a generated overlay (dist/deploy), so re-running with a new IMG
# upgrades in place; RUNNER_IMG=registry/loom-runner:tag also sets kubernetes.images.runner.
# First: set server.hostname and server.owner in config/manager/config.yaml and create the
# secrets key (README "Install on a cluster").
IMG ?=
RUNNER_IMG ?=
DEPLOY_DIR ?= dist/deploy
deploy: manifests ## Deploy Loom with kustomize: make deploy IMG=… [RUNNER_IMG=…] (re-run to upgrade).
	@test -n "$(IMG)" || { echo "make deploy needs IMG=registry/loom:tag (the Loom image to run)" >&2; exit 2; }
	@bash hack/deploy-overlay.sh $(DEPLOY_DIR) "$(IMG)" "$(RUNNER_IMG)"
	$(KUBECTL) apply --server-side --field-manager=loom-deploy -k $(DEPLOY_DIR)

# Removes Loom (Deployment, Service, config, RBAC) but keeps namespace loom with its data volume
# (loom-data: database, logs) and the secrets key (loom-secrets-key); PURGE=1 deletes those too.
# The CRD stays either way, and with it any SpindleSets: `make uninstall` removes it.
PURGE ?=
undeploy: ## Remove Loom; keeps namespace, data volume and secrets key unless PURGE=1.
ifeq ($(PURGE),1)
	$(KUBECTL) kustomize config/default | node hack/without-kinds.ts CustomResourceDefinition | $(KUBECTL) delete -f - --ignore-not-found --wait=false
	@echo "make undeploy PURGE=1: deleted namespace loom with its data volume loom-data and the secrets key loom-secrets-key (the CRD stays: make uninstall)"
else
	$(KUBECTL) kustomize config/default | node hack/without-kinds.ts Namespace,PersistentVolumeClaim,CustomResourceDefinition | $(KUBECTL) delete -f - --ignore-not-found --wait=false
	@echo "make undeploy kept namespace loom, its data volume (PersistentVolumeClaim loom-data) and the secrets key (Secret loom-secrets-key); \`make undeploy PURGE=1\` deletes them too (the CRD stays: make uninstall)"
endif

# `loom serve --dev` on this machine with the Kubernetes engine against the current kubeconfig
# (kubebuilder's `make install run`): installs the CRD, makes namespace loom and the workflow
# ServiceAccount if missing, then runs until Ctrl-C. State in ./.loom/; the spindle on
# 127.0.0.1:6555. RUN_CLUSTER_CONFIG names the config file (kubernetes section: runner image).
RUN_CLUSTER_CONFIG ?= config/examples/run-cluster.yaml
run-cluster: build install ## Run loom serve on this machine with the Kubernetes engine against the current kubeconfig.
	$(KUBECTL) create namespace loom --dry-run=client -o yaml | $(KUBECTL) apply -f -
	$(KUBECTL) apply -f config/rbac/job_service_account.yaml
	LOOM_CONFIG=$(RUN_CLUSTER_CONFIG) node dist/cli/main.js serve --dev

# --- Helm chart (charts/loom) ---
# helm: from PATH, else the one hack/control-plane.sh builds for the tests.
.PHONY: helm-lint helm-package helm-push
HELM ?= $(shell command -v helm 2>/dev/null || echo $(LOOM_CACHE)/k8s-v1.37.2/bin/helm)
HELM_REGISTRY ?=
CHART_VERSION = $(shell sed -n 's/^version: *//p' charts/loom/Chart.yaml)
helm-lint: ## Lint the Helm chart (charts/loom).
	$(HELM) lint charts/loom --strict --set server.hostname=spindle.example.com --set server.owner=did:plc:abcdefghijklmnopqrstuvwx

# dist/loom-<version>.tgz, an OCI-ready chart package.
helm-package: helm-lint ## Package the chart into dist/.
	@mkdir -p dist
	$(HELM) package charts/loom -d dist

# Pushes the package as an OCI artifact: make helm-push HELM_REGISTRY=oci://ghcr.io/you/charts
# (log in first: helm registry login ghcr.io).
helm-push: helm-package ## Push the packaged chart: make helm-push HELM_REGISTRY=oci://…
	@test -n "$(HELM_REGISTRY)" || { echo "make helm-push needs HELM_REGISTRY=oci://registry/path" >&2; exit 2; }
	$(HELM) push dist/loom-$(CHART_VERSION).tgz $(HELM_REGISTRY)

clean: ## Remove dist/, node_modules/ and ./.loom/.
	rm -rf dist node_modules .loom

# --- Kubernetes control plane for tests (see hack/control-plane.sh) ---
.PHONY: control-plane dev-cluster
control-plane: ## Build the test control plane into ~/.cache/loom.
	bash hack/control-plane.sh

dev-cluster: build control-plane ## Start a local control plane with fake nodes for manual work.
	node hack/dev-cluster.ts

# --- Runner bundles (linux/amd64 + linux/arm64) and images -------------------------------------
# Both bundles build on either machine: the other architecture's Node (npm `node-linux-*`) and
# Debian libraries are fetched into $(LOOM_CACHE) by hack/runner-cross.sh; qemu-user-static in
# binfmt_misc (hack/qemu-binfmt.sh) lets test/runner-chroot.test.ts run that bundle here.
.PHONY: runner-cross-deps runner-bundles
runner-cross-deps: deps ## Fetch the other architecture's Node and libraries for the runner bundle.
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
