#!/usr/bin/env bash
# Registers qemu-user-static (hack/install-system-deps.sh) with the kernel's binfmt_misc for the
# architectures other than the machine's, so the runner bundle of the other architecture runs in
# test/runner-chroot.test.ts. Debian's entries carry flag F: the kernel opens the emulator now,
# so it runs programs inside a chroot that holds no qemu.
#
# Kernel state, lost at reboot: checked every time (`make test-deps`), registered when missing.
# Needs root; without it, says so and leaves the test to report what is missing.
set -euo pipefail

BINFMT=/proc/sys/fs/binfmt_misc
log() { printf '[qemu-binfmt] %s\n' "$*" >&2; }

case "$(uname -m)" in
  x86_64) wanted=(qemu-aarch64) ;;
  aarch64) wanted=(qemu-x86_64) ;;
  *) wanted=() ;;
esac
for name in "${wanted[@]}"; do
  conf=/usr/lib/binfmt.d/$name.conf
  if [[ -e "$BINFMT/$name" ]]; then
    log "$name: registered"
  elif [[ "$(id -u)" != 0 ]]; then
    log "$name: not registered, and registering needs root"
  elif [[ ! -f "$conf" ]]; then
    log "$name: $conf missing (qemu-user-static not installed?)"
  else
    entry=$(<"$conf")
    [[ "$entry" == *F ]] || entry="${entry}F"
    # In a container without the privilege this fails: say so; the test names what is missing.
    if { [[ -e "$BINFMT/register" ]] || mount -t binfmt_misc binfmt_misc "$BINFMT"; } &&
      printf '%s' "$entry" >"$BINFMT/register"; then
      log "$name: registered"
    else
      log "$name: could not register with binfmt_misc (no privilege?)"
    fi
  fi
done
