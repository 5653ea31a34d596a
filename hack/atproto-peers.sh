#!/usr/bin/env bash
# Installs the real AT Protocol peers the end-to-end tests run against, into a cache folder
# outside the repository (never into the project's dependency tree):
#
#   ${LOOM_CACHE:-$HOME/.cache/loom}/atproto-<DEVENV_VERSION>-node<NODE22_VERSION>/
#       node_modules/.bin/node            Node 22 from the npm `node` package
#       node_modules/@atproto/dev-env     the reference PDS + PLC directory (TestNetworkNoAppView)
#       start-peers.mjs                   copied from hack/atproto-peers/ (started by test/harness)
#       .version                          stamp: what was installed
#   ${LOOM_CACHE:-$HOME/.cache/loom}/jetstream-<JETSTREAM_VERSION>/bin/jetstream   (+ .version)
#
# Why Node 22: dev-env's better-sqlite3 aborts under Node 24.19+ about 15 s after start. Its native
# module is compiled against the `node` package's own headers (npm_config_nodedir), so node-gyp
# downloads nothing.
# Jetstream: github.com/bluesky-social/jetstream at a late-2024 pseudo-version from the Go module
# proxy (the 2026 server rejects dev-env's DID keys), built with GOFLAGS=-mod=mod.
#
# Idempotent: each part is redone only when its stamp is missing or names other versions. Work
# happens in temp folders renamed at the end; a lock serialises concurrent runs.
# Environment: LOOM_CACHE, DEVENV_VERSION, NODE22_VERSION, JETSTREAM_VERSION.
set -euo pipefail

DEVENV_VERSION=${DEVENV_VERSION:-0.6.7}
NODE22_VERSION=${NODE22_VERSION:-22.23.3}
JETSTREAM_VERSION=${JETSTREAM_VERSION:-v0.0.0-20241210005130-ea96859b93d1}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_ROOT=${LOOM_CACHE:-$HOME/.cache/loom}
PEERS="$CACHE_ROOT/atproto-$DEVENV_VERSION-node$NODE22_VERSION"
JS="$CACHE_ROOT/jetstream-$JETSTREAM_VERSION"

log() { printf '[atproto-peers] %s\n' "$*" >&2; }
die() { printf '[atproto-peers] ERROR: %s\n' "$*" >&2; exit 1; }

command -v npm >/dev/null || die "npm is not on PATH"
command -v go >/dev/null || die "the go command is not on PATH (needed to build jetstream)"

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.atproto-peers.lock"
if ! flock -n 9; then
  log "another install holds $CACHE_ROOT/.atproto-peers.lock; waiting for it"
  flock 9
fi
TOTAL_START=$SECONDS

# --- PDS + PLC: @atproto/dev-env on Node 22 --------------------------------------------------------
install_devenv() {
  local want="dev-env $DEVENV_VERSION node $NODE22_VERSION"
  if [[ -f "$PEERS/.version" && "$(cat "$PEERS/.version")" == "$want" && -x "$PEERS/node_modules/.bin/node" ]]; then
    log "$want: up to date ($PEERS)"
  else
    local t=$SECONDS tmp="$PEERS.tmp"
    rm -rf "$tmp" && mkdir -p "$tmp"
    log "installing node@$NODE22_VERSION into $tmp"
    cat >"$tmp/package.json" <<EOF
{ "name": "loom-atproto-peers", "private": true, "type": "module" }
EOF
    (cd "$tmp" && nice -n 10 npm install --no-audit --no-fund --loglevel=error "node@$NODE22_VERSION" >&2) ||
      die "npm install node@$NODE22_VERSION failed"
    local node="$tmp/node_modules/.bin/node" got
    got=$("$node" --version) || die "node@$NODE22_VERSION does not run"
    [[ "$got" == "v$NODE22_VERSION" ]] || die "node@$NODE22_VERSION reports $got"
    local headers
    # The `node` package installs node-<os>-<arch> (the release tarball: bin/, include/) beside it.
    headers=$(ls -d "$tmp"/node_modules/node/node_modules/node-linux-* 2>/dev/null | head -1)
    [[ -f "$headers/include/node/common.gypi" ]] || die "no node headers under $headers (node-gyp would download them)"
    # A copy outside node_modules: the next npm install may re-run the `node` package's install
    # and replace that folder while node-gyp reads it.
    mkdir -p "$tmp/.node-headers" && cp -r "$headers/include" "$tmp/.node-headers/"
    headers="$tmp/.node-headers"
    log "installing @atproto/dev-env@$DEVENV_VERSION with node $got (native modules built against $headers)"
    # Node 22 first on PATH: npm runs install scripts (prebuild-install / node-gyp) with it, so
    # better-sqlite3 is compiled for Node 22's ABI. The prebuilt-binary download is not reachable
    # here; node-gyp then builds from source against the local headers.
    (cd "$tmp" && PATH="$tmp/node_modules/.bin:$PATH" npm_config_nodedir="$headers" \
      nice -n 10 npm install --no-audit --no-fund --loglevel=error "@atproto/dev-env@$DEVENV_VERSION" >&2) ||
      die "npm install @atproto/dev-env@$DEVENV_VERSION failed"
    (cd "$tmp" && "$node" -e 'require("better-sqlite3")(":memory:").prepare("select 1").get()') ||
      die "better-sqlite3 does not load under node $got"
    printf '%s\n' "$want" >"$tmp/.version"
    rm -rf "$PEERS" && mv "$tmp" "$PEERS"
    log "installed $want in $((SECONDS - t)) s"
  fi
  # The start script is the project's: always the current copy (cheap, no version to track).
  cp "$HERE/atproto-peers/start-peers.mjs" "$PEERS/.start-peers.mjs.tmp"
  mv -f "$PEERS/.start-peers.mjs.tmp" "$PEERS/start-peers.mjs"
}

# --- Jetstream --------------------------------------------------------------------------------------
build_jetstream() {
  if [[ -x "$JS/bin/jetstream" && -f "$JS/bin/.version" && "$(cat "$JS/bin/.version")" == "$JETSTREAM_VERSION" ]]; then
    log "jetstream $JETSTREAM_VERSION: up to date ($JS/bin/jetstream)"
    return
  fi
  local t=$SECONDS w="$JS/src"
  mkdir -p "$JS/bin" "$w"
  log "building github.com/bluesky-social/jetstream@$JETSTREAM_VERSION ./cmd/jetstream"
  (
    export GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
    cd "$w"
    [[ -f go.mod ]] || go mod init example.invalid/loom-jetstream-bin >/dev/null 2>&1
    go get "github.com/bluesky-social/jetstream@$JETSTREAM_VERSION" >&2 ||
      die "go get github.com/bluesky-social/jetstream@$JETSTREAM_VERSION failed"
    nice -n 10 go build -trimpath -ldflags "-s -w" -o "$JS/bin/.jetstream.tmp" \
      github.com/bluesky-social/jetstream/cmd/jetstream ||
      die "building github.com/bluesky-social/jetstream/cmd/jetstream@$JETSTREAM_VERSION failed"
  )
  mv -f "$JS/bin/.jetstream.tmp" "$JS/bin/jetstream"
  printf '%s\n' "$JETSTREAM_VERSION" >"$JS/bin/.version"
  log "built jetstream in $((SECONDS - t)) s"
}

install_devenv
build_jetstream

cat >"$CACHE_ROOT/.atproto-peers.env.tmp" <<EOF
# written by hack/atproto-peers.sh; read by test/harness/atproto-peers.ts
PEERS_DIR=$PEERS
PEERS_NODE=$PEERS/node_modules/.bin/node
JETSTREAM_BIN=$JS/bin/jetstream
DEVENV_VERSION=$DEVENV_VERSION
NODE22_VERSION=$NODE22_VERSION
JETSTREAM_VERSION=$JETSTREAM_VERSION
EOF
mv -f "$CACHE_ROOT/.atproto-peers.env.tmp" "$CACHE_ROOT/atproto-peers.env"
log "done in $((SECONDS - TOTAL_START)) s"
