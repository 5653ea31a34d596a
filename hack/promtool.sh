#!/usr/bin/env bash
# Builds Prometheus's `promtool` from the Go module proxy, for the tests of config/monitoring
# (`promtool check rules`, `promtool test rules`), into a cache folder outside the repository:
#
#   ${LOOM_CACHE:-$HOME/.cache/loom}/promtool-<module version>/promtool   (+ .promtool.version stamp)
#
# Prometheus 3.x is published on the module proxy as github.com/prometheus/prometheus v0.3XX.Y
# (v0.316.0 is Prometheus v3.16.0); `go install module@version` builds exactly that release.
#
# Idempotent: nothing happens when the stamped version is there. The build goes to a temp folder
# and is renamed at the end, so an interrupted build never leaves a half binary that a later
# run would trust; a lock serialises concurrent runs. Environment: LOOM_CACHE, PROMETHEUS_MODULE_VERSION.
set -euo pipefail

PROMETHEUS_MODULE_VERSION=${PROMETHEUS_MODULE_VERSION:-v0.316.0}
CACHE_ROOT=${LOOM_CACHE:-$HOME/.cache/loom}
DIR="$CACHE_ROOT/promtool-$PROMETHEUS_MODULE_VERSION"

# A newer `go` line in a dependency must fail loudly, not download a toolchain.
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="-buildvcs=false"

log() { printf '[promtool] %s\n' "$*" >&2; }
die() { printf '[promtool] ERROR: %s\n' "$*" >&2; exit 1; }

if [[ -x "$DIR/promtool" && -f "$DIR/.promtool.version" && "$(cat "$DIR/.promtool.version")" == "$PROMETHEUS_MODULE_VERSION" ]]; then
  log "promtool $PROMETHEUS_MODULE_VERSION: up to date ($DIR/promtool)"
  exit 0
fi
command -v go >/dev/null || die "the go command is not on PATH (Go >= 1.26 builds promtool $PROMETHEUS_MODULE_VERSION)"

mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9
# Another run may have finished the build while this one waited for the lock.
if [[ -x "$DIR/promtool" && "$(cat "$DIR/.promtool.version" 2>/dev/null)" == "$PROMETHEUS_MODULE_VERSION" ]]; then
  exit 0
fi

tmp=$(mktemp -d "$DIR/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "building github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION (a few minutes, once)"
GOBIN="$tmp" nice go install "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION"
"$tmp/promtool" --version >/dev/null || die "the built promtool does not run"
mv -f "$tmp/promtool" "$DIR/promtool"
printf '%s\n' "$PROMETHEUS_MODULE_VERSION" >"$DIR/.promtool.version"
log "installed $("$DIR/promtool" --version | head -1) at $DIR/promtool"
