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
.PHONY: manifests install uninstall deploy undeploy run-cluster
KUBECTL ?= kubectl
manifests: node_modules/.installed
	npm run manifests

install: manifests
	$(KUBECTL) apply --server-side --field-manager=loom-deploy -k config/crd

uninstall:
	$(KUBECTL) delete -k config/crd --ignore-not-found

# CRD + RBAC + the Loom Deployment (config/default) with the image IMG=registry/loom:tag, set by a
# kustomize `images:` entry in a generated overlay (dist/deploy), so re-running with a new IMG
# upgrades in place; RUNNER_IMG=registry/loom-runner:tag also sets kubernetes.images.runner.
# First: set server.hostname and server.owner in config/manager/config.yaml and create the
# secrets key (README "Install on a cluster").
IMG ?=
RUNNER_IMG ?=
DEPLOY_DIR ?= dist/deploy
deploy: manifests
	@test -n "$(IMG)" || { echo "make deploy needs IMG=registry/loom:tag (the Loom image to run)" >&2; exit 2; }
	@bash hack/deploy-overlay.sh $(DEPLOY_DIR) "$(IMG)" "$(RUNNER_IMG)"
	$(KUBECTL) apply --server-side --field-manager=loom-deploy -k $(DEPLOY_DIR)

# Removes Loom (Deployment, Service, config, RBAC) but keeps namespace loom with its data volume
# (loom-data: database, logs) and the secrets key (loom-secrets-key); PURGE=1 deletes those too.
# The CRD stays either way, and with it any SpindleSets: `make uninstall` removes it.
PURGE ?=
undeploy:
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
run-cluster: build install
	$(KUBECTL) create namespace loom --dry-run=client -o yaml | $(KUBECTL) apply -f -
	$(KUBECTL) apply -f config/rbac/job_service_account.yaml
	LOOM_CONFIG=$(RUN_CLUSTER_CONFIG) node dist/cli/main.js serve --dev

# --- Helm chart (charts/loom) ---
# helm: from PATH, else the one hack/control-plane.sh builds for the tests.
.PHONY: helm-lint helm-package helm-push
HELM ?= $(shell command -v helm 2>/dev/null || echo $(LOOM_CACHE)/k8s-v1.37.2/bin/helm)
HELM_REGISTRY ?=
CHART_VERSION = $(shell sed -n 's/^version: *//p' charts/loom/Chart.yaml)
helm-lint:
	$(HELM) lint charts/loom --strict --set server.hostname=spindle.example.com --set server.owner=did:plc:abcdefghijklmnopqrstuvwx

# dist/loom-<version>.tgz, an OCI-ready chart package.
helm-package: helm-lint
	@mkdir -p dist
	$(HELM) package charts/loom -d dist

# Pushes the package as an OCI artifact: make helm-push HELM_REGISTRY=oci://ghcr.io/you/charts
# (log in first: helm registry login ghcr.io).
helm-push: helm-package
	@test -n "$(HELM_REGISTRY)" || { echo "make helm-push needs HELM_REGISTRY=oci://registry/path" >&2; exit 2; }
	$(HELM) push dist/loom-$(CHART_VERSION).tgz $(HELM_REGISTRY)

clean:
	rm -rf dist node_modules .loom

# --- Kubernetes control plane for tests (see hack/control-plane.sh) ---
.PHONY: control-plane dev-cluster
control-plane:
	bash hack/control-plane.sh

dev-cluster: build control-plane
	node hack/dev-cluster.ts
