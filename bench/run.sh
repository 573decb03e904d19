#!/usr/bin/env bash
# Skitai against the peer servers, in the same run, once per anyio backend.
#
#   bash bench/run.sh                 # throughput, p99, RSS: ~7 min per backend
#   bash bench/run.sh idle            # memory per idle connection, HTTP and WebSocket (5,000)
#   bash bench/run.sh ws              # WebSocket echo: 1,000 connections x 20 messages
#   DUR=2 REPS=1 bash bench/run.sh    # check the commands work (figures meaningless)
#   PARSER=h11 bash bench/run.sh      # HTTP/1.1 on h11 instead of the default (auto)
#   TAG=gthread PEERS=gunicorn-gthread REPS=5 bash bench/run.sh   # a narrower run, its own results file
#   bash bench/run.sh orig            # the original Skitai (PyPI 0.57.16) against the same peers
#
# Uses the shared harness (SHARED_BENCH, default ../shared/bench next to this
# checkout) and its venv of peers (made once by its setup_anchors.sh). Our
# server runs from this checkout's .venv. Results: bench/results/*.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${SHARED_BENCH:-$ROOT/../shared/bench}"
BACKENDS="${BACKENDS:-asyncio trio}"
PEERS="${PEERS:-waitress,hypercorn-trio-wsgi,hypercorn-asyncio-wsgi,uvicorn-h11,gunicorn-gthread}"
IDLE_PEERS="${IDLE_PEERS:-uvicorn-h11,hypercorn-trio-asgi}"
WS_PEERS="${WS_PEERS:-uvicorn-h11 hypercorn-trio-asgi}"
PYTHON="$ROOT/.venv/bin/python"
[ -x "$PYTHON" ] || { echo "no .venv: run the README's install command first" >&2; exit 1; }
[ -d "$SHARED" ] || { echo "no shared bench harness at $SHARED (set SHARED_BENCH)" >&2; exit 1; }
mkdir -p "$ROOT/bench/results"

command_for() {  # the skitai command line the harness runs, for one backend
    echo "$PYTHON -m skitai --host 127.0.0.1 --port {PORT} --backend $1 --http-parser ${PARSER:-auto} --no-access-log $2 apps:wsgi_app"
}
# Beside the WSGI app at /, the WebSocket echo every handshake goes to.
WS_ECHO="/=$ROOT/bench/ws_echo.py"

if [ "${1:-}" = orig ]; then
    # The original Skitai (PyPI 0.57.16, from ORIG_VENV) against the same peers: its
    # ratio to ours is taken through a peer both runs share (gunicorn-gthread).
    ORIG_PY="${ORIG_VENV:-${TMPDIR:-/tmp}/orig-venv}/bin/python"
    [ -x "$ORIG_PY" ] || { echo "no $ORIG_PY: python3 -m venv orig-venv && orig-venv/bin/pip install skitai==0.57.16" >&2; exit 1; }
    EXTRA_NAME="skitai-orig" EXTRA_MODE="wsgi, skitai 0.57.16 (PyPI), 4 threads" \
    EXTRA_CMD="$ORIG_PY $ROOT/bench/orig_serve.py" \
    SERVERS="extra,${PEERS}" OUT="$ROOT/bench/results/anchors-orig.md" \
        bash "$SHARED/run_anchors.sh"
    sed -i "s|$ROOT/||g; s|$ORIG_PY|orig-venv/bin/python|g" "$ROOT"/bench/results/*.md
    exit 0
fi

for backend in $BACKENDS; do
    echo "== skitai on $backend: ${1:-throughput}" >&2
    if [ "${1:-}" = idle ]; then
        # Idle means idle: no pings in the 30 s an idle client is watched (the peers' come after 20 s).
        EXTRA_NAME="skitai-$backend" EXTRA_MODES="http ws" \
        EXTRA_CMD="$(command_for "$backend" "--keep-alive 600 --websocket-ping-interval 600 --backlog 4096") $WS_ECHO" \
        SERVERS="extra,$IDLE_PEERS" N="${N:-5000}" OUT="$ROOT/bench/results/idle-$backend.md" \
            bash "$SHARED/run_idle.sh"
    elif [ "${1:-}" = ws ]; then
        OUT="$ROOT/bench/results/ws-$backend${RAMP:+-ramp$RAMP}.md" PEERS="$WS_PEERS" BACKEND="$backend" \
        SKITAI_CMD="$(command_for "$backend" "--backlog 4096") $WS_ECHO" \
            bash "$ROOT/bench/ws_load.sh"
    else
        EXTRA_NAME="skitai-$backend" EXTRA_MODE="wsgi, anyio/$backend, ${PARSER:-auto}" \
        EXTRA_CMD="$(command_for "$backend" "")" \
        SERVERS="extra,$PEERS" OUT="$ROOT/bench/results/anchors-$backend${PARSER:+-$PARSER}${TAG:+-$TAG}.md" \
            bash "$SHARED/run_anchors.sh"
    fi
done
# The reports name our interpreter by its path; keep them free of this checkout's location.
sed -i "s|$ROOT/||g" "$ROOT"/bench/results/*.md
