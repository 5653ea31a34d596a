#!/usr/bin/env bash
# Debian's Chromium, for the status page's browser test (test/status-page/, driven by
# playwright-core with executablePath /usr/bin/chromium). Idempotent: nothing happens when the
# browser is there; waits for the dpkg lock another install may hold. Without root it only
# says what is missing (the test then fails, saying so).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  echo "[chromium] installing Debian's chromium (the status page's browser test)"
  apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null
  /usr/bin/chromium --version
else
  echo "[chromium] missing Debian package chromium (install it as root: apt-get install chromium)" >&2
fi
