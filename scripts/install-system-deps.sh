#!/usr/bin/env bash
# Debian packages the test suite drives as real peers: curl, wrk, h2load (nghttp2-client),
# and Chromium for the demo page (scripts/install-chromium.sh). Installs only what is
# missing; needs root (or sudo).
set -euo pipefail

want=()
command -v curl >/dev/null 2>&1 || want+=(curl)
command -v wrk >/dev/null 2>&1 || want+=(wrk)
command -v h2load >/dev/null 2>&1 || want+=(nghttp2-client)
if [[ "${PRONGHORN_SKIP_BROWSER:-0}" != "1" ]]; then
    bash "$(dirname "${BASH_SOURCE[0]}")/install-chromium.sh" >/dev/null
fi
if [[ ${#want[@]} -eq 0 ]]; then
    exit 0
fi
SUDO=""
if [[ "$(id -u)" != "0" ]]; then
    SUDO="sudo"
fi
echo "installing: ${want[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${want[@]}" >/dev/null
