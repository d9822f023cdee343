#!/usr/bin/env bash
# Run the Autobahn|Testsuite fuzzing client against pronghorn's WebSocket server.
#
#   scripts/autobahn.sh [REPORT_DIR]
#
# The suite (the autobahntestsuite package) only runs on Python 2.7: this script installs it in
# its own virtualenv (once), starts pronghorn with an echo app on a free port of 127.0.0.1,
# runs a bounded case set, stops the server and leaves the report in REPORT_DIR (default
# build/autobahn): index.json there is what tests/integration/test_websocket_autobahn.py reads.
#
# Environment:
#   PYTHON2          Python 2.7 interpreter (default: pyenv's 2.7.18)
#   AUTOBAHN_VENV    where the suite is installed (default: ~/.cache/pronghorn/autobahn-venv)
#   AUTOBAHN_CASES   JSON list of case patterns (default: a bounded set, see below)
#   PYTHON           Python running pronghorn (default: python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPORT_DIR="$(mkdir -p "${1:-$ROOT/build/autobahn}" && cd "${1:-$ROOT/build/autobahn}" && pwd)"
PYTHON2="${PYTHON2:-$HOME/.pyenv/versions/2.7.18/bin/python}"
PYTHON="${PYTHON:-python3}"
VENV="${AUTOBAHN_VENV:-$HOME/.cache/pronghorn/autobahn-venv}"
SUITE_VERSION="25.10.1"
# Framing, pings, fragmentation, UTF-8, close handling, limits and a sample of the
# permessage-deflate cases: about 330 cases, a minute or two. The full 9.* (16 MiB messages)
# and 12.*/13.* sets take far longer; pass AUTOBAHN_CASES='["*"]' to run everything.
CASES="${AUTOBAHN_CASES:-[\"1.*\", \"2.*\", \"3.*\", \"4.*\", \"5.*\", \"6.*\", \"7.*\", \"9.1.1\", \"9.1.2\", \"9.2.1\", \"9.2.2\", \"10.*\", \"12.1.1\", \"12.1.2\", \"12.1.3\", \"12.2.1\", \"12.2.2\", \"13.1.1\", \"13.1.2\", \"13.2.1\", \"13.3.1\", \"13.5.1\", \"13.7.1\"]}"

# ----------------------------------------------------------------- install the suite (once)
if [[ ! -x "$VENV/bin/wstest" ]]; then
    if [[ ! -x "$PYTHON2" ]]; then
        echo "autobahn: Python 2.7 not found at $PYTHON2 (set PYTHON2)" >&2
        exit 2
    fi
    # virtualenv 20.21 is the last release that creates Python 2.7 environments.
    "$PYTHON2" -m pip install --user --quiet --disable-pip-version-check "virtualenv<20.22"
    "$PYTHON2" -m virtualenv --quiet "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "autobahntestsuite==$SUITE_VERSION" 2>&1 | grep -v "^WARNING: Url\|DEPRECATION" || true
    if [[ ! -x "$VENV/bin/wstest" ]]; then
        echo "autobahn: installing autobahntestsuite into $VENV failed" >&2
        exit 2
    fi
fi

# ----------------------------------------------------------------- start pronghorn
PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
SERVER_LOG="$REPORT_DIR/server.log"
PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" - "$PORT" >"$SERVER_LOG" 2>&1 <<'PY' &
import sys

from pronghorn.config import Config
from pronghorn.server.server import Server


async def echo(scope, receive, send):
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "bytes": message.get("bytes"),
                    "text": message.get("text")})


config = Config(host="127.0.0.1", port=int(sys.argv[1]), lifespan="off", access_log=False,
                ws_ping_interval=None, log_level="warning")
sys.exit(Server(config, echo).run())
PY
SERVER_PID=$!
cleanup() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
trap cleanup EXIT

for _ in $(seq 1 100); do
    if "$PYTHON" -c "import socket, sys; socket.create_connection(('127.0.0.1', $PORT), 0.2)" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "autobahn: pronghorn did not start; see $SERVER_LOG" >&2
        exit 2
    fi
    sleep 0.1
done

# ----------------------------------------------------------------- run the fuzzing client
cat >"$REPORT_DIR/fuzzingclient.json" <<JSON
{
  "outdir": "$REPORT_DIR",
  "servers": [{"agent": "pronghorn", "url": "ws://127.0.0.1:$PORT"}],
  "cases": $CASES,
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
JSON
cd "$REPORT_DIR"
"$VENV/bin/wstest" --mode fuzzingclient --spec "$REPORT_DIR/fuzzingclient.json" \
    >"$REPORT_DIR/wstest.log" 2>&1
echo "autobahn: report in $REPORT_DIR/index.html ($REPORT_DIR/index.json)"
