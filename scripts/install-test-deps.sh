#!/usr/bin/env bash
# Debian packages the export tests use: chromium (the HTML report is rendered in
# headless Chromium through playwright-core) and prometheus (a real server scrapes
# `causeway trace --metrics`). Idempotent: installs only what is missing; as root
# or through sudo. Tests skip with a message when a package is absent.
set -euo pipefail

want=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || want+=(chromium)
command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ] || want+=(prometheus)

if [ ${#want[@]} -eq 0 ]; then
  echo "install-test-deps: chromium and prometheus already present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-test-deps: need root to install ${want[*]} (the export tests will skip without them)" >&2
    exit 2
  fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-test-deps: installing ${want[*]}"
# Refresh the package lists only when they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n1)" ]; then
  $SUDO apt-get update -qq
fi
# --no-install-recommends keeps chromium from pulling a desktop; the prometheus
# package's service is not started here (tests run their own server).
$SUDO apt-get install -y -qq --no-install-recommends "${want[@]}"
# The Debian package enables and may start a system prometheus on :9090; tests
# do not need it, stop it so it does not hold the port (ignore when no systemd).
if [[ " ${want[*]} " == *" prometheus "* ]]; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
echo "install-test-deps: done"
