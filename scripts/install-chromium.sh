#!/usr/bin/env bash
# Install Debian's chromium for the headless browser test (tests/integration/test_browser.py).
# Idempotent: does nothing when a chromium is already on PATH. CI and the test both call it.
set -euo pipefail
for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null 2>&1; then
        exit 0
    fi
done
sudo=""
if [[ "$(id -u)" != "0" ]]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# Another install may hold the dpkg lock (the system-deps script, a parallel test run): wait.
lock=(-o DPkg::Lock::Timeout=600)
$sudo apt-get "${lock[@]}" update -qq
$sudo apt-get "${lock[@]}" install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium
