#!/usr/bin/env bash
# Debian packages the tests need: git (clones), busybox-static (the runner's chroot test).
# Installs only what is missing, so it is cheap on a warm machine.
set -euo pipefail
need=()
command -v git >/dev/null || need+=(git)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v g++ >/dev/null && command -v make >/dev/null && command -v python3 >/dev/null || need+=(g++ make python3) # node-gyp: dev-env's better-sqlite3 (hack/atproto-peers.sh)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian packages: ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing Debian packages (install them as root): ${need[*]}" >&2
  fi
fi
