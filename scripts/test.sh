#!/usr/bin/env bash
# Install everything the suite needs, then run it: `bash scripts/test.sh [pytest args]`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
bash scripts/install-system-deps.sh
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e '.[test]'
exec "$PYTHON" -m pytest "$@"
