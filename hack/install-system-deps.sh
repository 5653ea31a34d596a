#!/usr/bin/env bash
# Debian packages the tests need: git (clones), busybox-static (the runner's chroot test),
# qemu-user-static (the other architecture's runner bundle in that test; its files come from
# hack/runner-cross.sh), binutils for the other architecture (strips that bundle's Node),
# postgresql (test/controller/microvm-postgres.test.ts), redis-server and mariadb-server
# (test/controller/microvm-services.test.ts), nix-bin (test/controller/microvm-nix-cache.test.ts).
# Installs only what is missing, so it is cheap on a warm machine.
set -euo pipefail
need=()
command -v git >/dev/null || need+=(git)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
dpkg -s qemu-user-static >/dev/null 2>&1 || need+=(qemu-user-static)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql) # the microvm PostgreSQL sidecar's setup, run for real
dpkg -s redis-server >/dev/null 2>&1 || need+=(redis-server) # the microvm Redis sidecar's script, run for real
dpkg -s mariadb-server >/dev/null 2>&1 || need+=(mariadb-server) # the microvm MariaDB sidecar's script, run for real
dpkg -s nix-bin >/dev/null 2>&1 || need+=(nix-bin) # the microvm Nix store cache: key, push, substitution, run for real
case "$(dpkg --print-architecture)" in
  amd64) cross=binutils-aarch64-linux-gnu ;;
  arm64) cross=binutils-x86-64-linux-gnu ;;
  *) cross= ;;
esac
[ -z "$cross" ] || dpkg -s "$cross" >/dev/null 2>&1 || need+=("$cross")
command -v g++ >/dev/null && command -v make >/dev/null && command -v python3 >/dev/null || need+=(g++ make python3) # node-gyp: dev-env's better-sqlite3 (hack/atproto-peers.sh)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian packages: ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing Debian packages (install them as root): ${need[*]}" >&2
  fi
fi
