#!/usr/bin/env bash
# Builds the Kubernetes control-plane binaries the integration tests run on, with the ordinary
# `go` command from the Go module proxy, into a cache folder outside the repository:
#
#   ${LOOM_CACHE:-$HOME/.cache/loom}/k8s-<kubernetes version>/bin/
#     kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok helm
#   .../share/kwok-stages.yaml   kwok's stock node/pod stages, copied from the kwok module
#   .../versions.env             what was built (read by test/harness)
#
# Idempotent: a binary is rebuilt only when it is missing or was built for another version
# (a `.<name>.version` stamp beside it). Builds go to a temp name and are renamed at the end,
# so an interrupted build never leaves a half-written binary that a later run would trust.
# A lock file serialises concurrent runs (several `make test` at once on one machine).
#
# Environment: LOOM_CACHE, K8S_VERSION, ETCD_VERSION, KWOK_VERSION, HELM_VERSION override the
# defaults below. Nothing here is ever committed; GOMODCACHE/GOCACHE stay wherever `go env` says.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
# Kubernetes 1.37 ships with etcd 3.7.x (kubernetes/kubernetes#141032); newest 3.7 patch.
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
HELM_VERSION=${HELM_VERSION:-v3.22.0}

CACHE_ROOT=${LOOM_CACHE:-$HOME/.cache/loom}
DIR="$CACHE_ROOT/k8s-$K8S_VERSION"
BIN="$DIR/bin"
SRC="$DIR/src"
SHARE="$DIR/share"

# A surprise newer `go` line in a dependency must fail loudly, not download a toolchain.
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false"

log() { printf '[control-plane] %s\n' "$*" >&2; }
die() { printf '[control-plane] ERROR: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "the go command is not on PATH (Go >= 1.26 is needed to build Kubernetes $K8S_VERSION)"

mkdir -p "$BIN" "$SRC" "$SHARE"
exec 9>"$DIR/.lock"
if ! flock -n 9; then
  log "another build holds $DIR/.lock; waiting for it"
  flock 9
fi

# Background builds share 2 cores with test runs and other work; be polite.
GO=(nice -n 10 go)
TOTAL_START=$SECONDS
BUILT=()

# A top-level string field of `go mod download -json` output (no jq on a bare machine).
json_field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",*\$/\1/p"; }

stamp_ok() { # name version
  [[ -x "$BIN/$1" && -f "$BIN/.$1.version" && "$(cat "$BIN/.$1.version")" == "$2" ]]
}

finish_binary() { # name version started_at
  mv -f "$BIN/.$1.tmp" "$BIN/$1"
  printf '%s\n' "$2" >"$BIN/.$1.version"
  log "built $1 $2 in $((SECONDS - $3)) s"
  BUILT+=("$1")
}

# --- Kubernetes: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl -------------
# `go install k8s.io/kubernetes/cmd/...@v1.37.2` is refused: k8s.io/kubernetes' go.mod requires
# its staging modules at v0.0.0 and maps them to ./staging with replace directives. A wrapper
# main module supplies the replacements instead, mapping each staging module to its published
# tag v0.<minor>.<patch>. The list comes from k8s.io/kubernetes' own go.mod, not from a hand list.
build_kubernetes() {
  local names=(kube-apiserver kube-controller-manager kube-scheduler kubectl) missing=() n
  for n in "${names[@]}"; do stamp_ok "$n" "$K8S_VERSION" || missing+=("$n"); done
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "kubernetes $K8S_VERSION: up to date (${names[*]})"
    return
  fi
  local stg="v0.${K8S_VERSION#v1.}" w="$SRC/kubernetes" t=$SECONDS
  log "kubernetes $K8S_VERSION: resolving modules (staging modules at $stg) in $w"
  mkdir -p "$w"
  (
    cd "$w"
    [[ -f go.mod ]] || go mod init example.invalid/loom-k8s-bins >/dev/null 2>&1
    local dl kgomod
    dl=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION") ||
      die "k8s.io/kubernetes@$K8S_VERSION: $(json_field Error <<<"$dl")"
    kgomod=$(json_field GoMod <<<"$dl")
    [[ -f "$kgomod" ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION's go.mod"
    local m mods
    mods=$(grep -o 'k8s.io/[A-Za-z0-9._-]* => ./staging/src/' "$kgomod" | cut -d' ' -f1)
    [[ -n "$mods" ]] || die "no staging replace lines found in $kgomod"
    for m in $mods; do go mod edit "-replace=$m=$m@$stg"; done
    go mod edit "-require=k8s.io/kubernetes@$K8S_VERSION"
    # Fails fast, naming the module, if any staging module is not published at $stg.
    go get "k8s.io/kubernetes@$K8S_VERSION" || die "go get k8s.io/kubernetes@$K8S_VERSION failed (a staging module missing at $stg?)"
  )
  log "kubernetes $K8S_VERSION: modules resolved in $((SECONDS - t)) s"
  local minor=${K8S_VERSION#v1.}
  minor=${minor%%.*}
  # Exact version ldflags: /version then reports the release; a wrong minor would trip the
  # emulation-version check, so they are derived from K8S_VERSION rather than typed.
  local ldf="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
  ldf+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ldf+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ldf+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  ldf+=" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  for n in "${missing[@]}"; do
    t=$SECONDS
    log "building $n $K8S_VERSION (k8s.io/kubernetes/cmd/$n) ..."
    (cd "$w" && "${GO[@]}" build -trimpath -ldflags "$ldf" -o "$BIN/.$n.tmp" "k8s.io/kubernetes/cmd/$n") ||
      die "building k8s.io/kubernetes/cmd/$n@$K8S_VERSION failed"
    finish_binary "$n" "$K8S_VERSION" "$t"
  done
}

# --- etcd ---------------------------------------------------------------------------------------
# go.etcd.io/etcd/server/v3's go.mod has relative replace directives (../api, ...), so `go install`
# refuses it too; in a wrapper module those are ignored and the published siblings are used.
build_etcd() {
  if stamp_ok etcd "$ETCD_VERSION"; then log "etcd $ETCD_VERSION: up to date"; return; fi
  local w="$SRC/etcd" t=$SECONDS
  log "building etcd $ETCD_VERSION (go.etcd.io/etcd/server/v3) ..."
  mkdir -p "$w"
  (
    cd "$w"
    [[ -f go.mod ]] || go mod init example.invalid/loom-etcd-bin >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" || die "go get go.etcd.io/etcd/server/v3@$ETCD_VERSION failed"
    "${GO[@]}" build -trimpath -ldflags "-s -w" -o "$BIN/.etcd.tmp" go.etcd.io/etcd/server/v3 ||
      die "building go.etcd.io/etcd/server/v3@$ETCD_VERSION failed"
  )
  finish_binary etcd "$ETCD_VERSION" "$t"
}

# --- kwok (fake nodes and kubelet) ----------------------------------------------------------------
# No replace directives in sigs.k8s.io/kwok, so a plain `go install` works.
build_kwok() {
  local kw
  if stamp_ok kwok "$KWOK_VERSION"; then
    log "kwok $KWOK_VERSION: up to date"
  else
    local t=$SECONDS tmp="$DIR/.gobin-kwok"
    log "building kwok $KWOK_VERSION (sigs.k8s.io/kwok/cmd/kwok) ..."
    rm -rf "$tmp" && mkdir -p "$tmp"
    (cd "$SRC" && GOBIN="$tmp" "${GO[@]}" install -trimpath \
      -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
      "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION") || die "building sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION failed"
    mv -f "$tmp/kwok" "$BIN/.kwok.tmp" && rm -rf "$tmp"
    finish_binary kwok "$KWOK_VERSION" "$t"
  fi
  # The standalone kwok binary has no built-in stages ("no stages found"); kwokctl injects the
  # stock ones. Take them, and the CRDs of the Logs/ClusterLogs kinds (fake container logs served
  # through kwok's kubelet API), from the same module version so they match the binary.
  if [[ "$(cat "$SHARE/.kwok.version" 2>/dev/null)" != "$KWOK_VERSION" ]]; then
    local dl
    dl=$(cd "$SRC" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION") ||
      die "sigs.k8s.io/kwok@$KWOK_VERSION: $(json_field Error <<<"$dl")"
    kw=$(json_field Dir <<<"$dl")
    [[ -d "$kw/kustomize/stage" ]] || die "kwok stage files not found under $kw/kustomize/stage"
    concat_from_module "$kw/kustomize/stage" "$SHARE/kwok-stages.yaml" \
      node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
      pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml \
      pod/chaos/pod-container-running-failed.yaml
    concat_from_module "$kw/kustomize/crd/bases" "$SHARE/kwok-crds.yaml" \
      kwok.x-k8s.io_logs.yaml kwok.x-k8s.io_clusterlogs.yaml
    printf '%s\n' "$KWOK_VERSION" >"$SHARE/.kwok.version"
    log "wrote kwok $KWOK_VERSION stages and CRDs to $SHARE"
  fi
}

concat_from_module() { # from-dir out-file files...
  local from=$1 out=$2 f
  shift 2
  : >"$out.tmp"
  for f in "$@"; do
    [[ -f "$from/$f" ]] || die "$f missing in sigs.k8s.io/kwok@$KWOK_VERSION ($from)"
    printf -- '---\n# from sigs.k8s.io/kwok@%s %s\n' "$KWOK_VERSION" "${from#*@"$KWOK_VERSION"/}/$f" >>"$out.tmp"
    cat "$from/$f" >>"$out.tmp"
  done
  mv -f "$out.tmp" "$out"
}

# --- helm -----------------------------------------------------------------------------------------
build_helm() {
  if stamp_ok helm "$HELM_VERSION"; then log "helm $HELM_VERSION: up to date"; return; fi
  local t=$SECONDS tmp="$DIR/.gobin-helm"
  log "building helm $HELM_VERSION (helm.sh/helm/v3/cmd/helm) ..."
  rm -rf "$tmp" && mkdir -p "$tmp"
  (cd "$SRC" && GOBIN="$tmp" "${GO[@]}" install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION") || die "building helm.sh/helm/v3/cmd/helm@$HELM_VERSION failed"
  mv -f "$tmp/helm" "$BIN/.helm.tmp" && rm -rf "$tmp"
  finish_binary helm "$HELM_VERSION" "$t"
}

log "cache: $DIR ($(go version | cut -d' ' -f3-))"
# etcd first and Kubernetes next: together they are enough for the plain control plane.
build_etcd
build_kubernetes
build_kwok
build_helm

cat >"$DIR/.versions.env.tmp" <<EOF
# written by hack/control-plane.sh; read by test/harness
K8S_VERSION=$K8S_VERSION
ETCD_VERSION=$ETCD_VERSION
KWOK_VERSION=$KWOK_VERSION
HELM_VERSION=$HELM_VERSION
GO_VERSION=$(go env GOVERSION)
EOF
mv -f "$DIR/.versions.env.tmp" "$DIR/versions.env"

if [[ ${#BUILT[@]} -eq 0 ]]; then
  log "all binaries present in $BIN; nothing to build ($((SECONDS - TOTAL_START)) s)"
else
  log "built ${BUILT[*]} in $((SECONDS - TOTAL_START)) s; binaries in $BIN"
fi
