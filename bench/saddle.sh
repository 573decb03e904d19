#!/usr/bin/env bash
# What Saddle costs: the same hello as a raw WSGI app, a Saddle app (routing,
# `was`, two hooks) and a Flask app, all served by Skitai, in one run.
#
#   bash bench/saddle.sh                  # both backends, REPS=5 x DUR=8 s: ~5 min
#   DUR=2 REPS=1 bash bench/saddle.sh     # check the commands work (figures meaningless)
#
# Server on CPU 0, wrk on CPU 1, as in bench/run.sh. The repeats are
# interleaved (wsgi, saddle, flask, wsgi, ...) so the machine's drift hits the
# three alike; medians are reported. Results: bench/results/saddle-<backend>.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="$ROOT/.venv/bin/python"
BACKENDS="${BACKENDS:-asyncio trio}"
DUR="${DUR:-8}"
REPS="${REPS:-5}"
PORT="${PORT:-5811}"
APPS="wsgi_app saddle_app flask_app"
[ -x "$PYTHON" ] || { echo "no .venv: run the README's install command first" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is missing: bash ../shared/bench/setup_anchors.sh" >&2; exit 1; }
mkdir -p "$ROOT/bench/results"
cd "$ROOT/bench"

wait_ready() {  # wait_ready PID
    for _ in $(seq 1 150); do
        kill -0 "$1" 2>/dev/null || return 1
        [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$PORT/")" = 200 ] && return 0
        sleep 0.2
    done
    return 1
}

measure() {  # measure BACKEND APP -> prints req/s
    setsid taskset -c 0 "$PYTHON" -m skitai --host 127.0.0.1 --port "$PORT" --backend "$1" \
        --no-access-log "saddle_apps:$2" >/dev/null 2>&1 &
    local pid=$!
    wait_ready "$pid" || { echo "$2 did not start" >&2; kill -KILL -- "-$pid" 2>/dev/null; exit 1; }
    taskset -c 1 wrk -t1 -c64 -d2s "http://127.0.0.1:$PORT/" >/dev/null  # warm-up
    taskset -c 1 wrk -t1 -c64 -d"${DUR}s" "http://127.0.0.1:$PORT/" | awk '/^Requests\/sec:/{print $2}'
    kill -TERM -- "-$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

for backend in $BACKENDS; do
    raw="$(mktemp)"
    for rep in $(seq 1 "$REPS"); do
        for app in $APPS; do
            rps="$(measure "$backend" "$app")"
            echo "$backend rep$rep $app: $rps req/s" >&2
            printf '%s\t%s\n' "$app" "$rps" >> "$raw"
        done
    done
    "$PYTHON" - "$raw" "$backend" "$DUR" "$REPS" > "$ROOT/bench/results/saddle-$backend.md" <<'EOF'
import statistics
import sys

raw, backend, dur, reps = sys.argv[1:]
runs = {}
for line in open(raw):
    app, rps = line.split()
    runs.setdefault(app, []).append(float(rps))
median = {app: statistics.median(values) for app, values in runs.items()}
print(f"# Saddle against raw WSGI and Flask on Skitai ({backend})\n")
print(f"`wrk -t1 -c64 -d{dur}s` on `GET /` (11-byte hello), server on CPU 0, wrk on CPU 1, "
      f"{reps} interleaved repeats, medians. Apps: `bench/saddle_apps.py`.\n")
print("| app | req/s (median) | repeats | µs per request | cost over raw WSGI |")
print("|---|---:|---|---:|---:|")
for app in ("wsgi_app", "saddle_app", "flask_app"):
    values = ", ".join(f"{v:,.0f}" for v in runs[app])
    cost = median["wsgi_app"] / median[app] - 1
    print(f"| {app} | {median[app]:,.0f} | {values} | {1e6 / median[app]:.1f} | {cost:+.1%} |")
print(f"\nSaddle / raw WSGI throughput: {median['saddle_app'] / median['wsgi_app']:.2f}; "
      f"Saddle / Flask: {median['saddle_app'] / median['flask_app']:.2f}.")
EOF
    rm -f "$raw"
    cat "$ROOT/bench/results/saddle-$backend.md" >&2
done
