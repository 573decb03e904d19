#!/usr/bin/env bash
# What Saddle costs: the same hello as a raw WSGI app, a Saddle app (routing,
# `was`, two hooks) and a Flask app, all served by Skitai, in one run.
#
#   bash bench/saddle.sh                  # both backends, REPS=5 x DUR=8 s: ~5 min
#   DUR=2 REPS=1 bash bench/saddle.sh     # check the commands work (figures meaningless)
#
# Server on CPU 0, wrk on CPU 1, as in bench/run.sh. The repeats are
# interleaved (wsgi, saddle, flask, wsgi, ...) so the machine's drift hits the
# three alike; medians are reported. Besides requests per second, the server's
# CPU time per request (utime + stime from /proc, all threads) is measured: on
# a shared machine it moves far less than throughput does.
# Results: bench/results/saddle-<backend>.md.
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

cpu_ticks() {  # cpu_ticks PID -> utime + stime of the process, all threads
    awk '{print $14 + $15}' "/proc/$1/stat"
}

measure() {  # measure BACKEND APP -> prints "req/s cpu-µs-per-request"
    taskset -c 0 "$PYTHON" -m skitai --host 127.0.0.1 --port "$PORT" --backend "$1" \
        --no-access-log "saddle_apps:$2" >/dev/null 2>&1 &
    local pid=$! before after out
    wait_ready "$pid" || { echo "$2 did not start" >&2; kill -KILL "$pid" 2>/dev/null; exit 1; }
    taskset -c 1 wrk -t1 -c64 -d2s "http://127.0.0.1:$PORT/" >/dev/null  # warm-up
    before="$(cpu_ticks "$pid")"
    out="$(taskset -c 1 wrk -t1 -c64 -d"${DUR}s" "http://127.0.0.1:$PORT/")"
    after="$(cpu_ticks "$pid")"
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
    echo "$out" | awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
        /requests in/ {n = $1} /^Requests\/sec:/ {rps = $2}
        END {printf "%s %.1f\n", rps, ticks / hz * 1e6 / n}'
}

for backend in $BACKENDS; do
    raw="$(mktemp)"
    for rep in $(seq 1 "$REPS"); do
        for app in $APPS; do
            read -r rps cpu <<< "$(measure "$backend" "$app")"
            echo "$backend rep$rep $app: $rps req/s, $cpu µs CPU per request" >&2
            printf '%s\t%s\t%s\n' "$app" "$rps" "$cpu" >> "$raw"
        done
    done
    "$PYTHON" - "$raw" "$backend" "$DUR" "$REPS" > "$ROOT/bench/results/saddle-$backend.md" <<'EOF'
import statistics
import sys

raw, backend, dur, reps = sys.argv[1:]
rps, cpu = {}, {}
for line in open(raw):
    app, app_rps, app_cpu = line.split()
    rps.setdefault(app, []).append(float(app_rps))
    cpu.setdefault(app, []).append(float(app_cpu))
rps_median = {app: statistics.median(values) for app, values in rps.items()}
cpu_median = {app: statistics.median(values) for app, values in cpu.items()}
print(f"# Saddle against raw WSGI and Flask on Skitai ({backend})\n")
print(f"`wrk -t1 -c64 -d{dur}s` on `GET /` (11-byte hello), server on CPU 0, wrk on CPU 1, "
      f"{reps} interleaved repeats, medians. Apps: `bench/saddle_apps.py`. CPU µs/request: the "
      "server process's utime + stime over the run, divided by the requests served.\n")
print("| app | req/s | CPU µs/request | cost over raw WSGI (CPU) | cost over raw WSGI (req/s) "
      "| req/s repeats | CPU repeats |")
print("|---|---:|---:|---:|---:|---|---|")
for app in ("wsgi_app", "saddle_app", "flask_app"):
    cpu_cost = cpu_median[app] / cpu_median["wsgi_app"] - 1
    rps_cost = rps_median["wsgi_app"] / rps_median[app] - 1
    print(f"| {app} | {rps_median[app]:,.0f} | {cpu_median[app]:.1f} | {cpu_cost:+.1%} | {rps_cost:+.1%} "
          f"| {', '.join(f'{v:,.0f}' for v in rps[app])} | {', '.join(f'{v:.1f}' for v in cpu[app])} |")
print(f"\nSaddle / raw WSGI: {cpu_median['saddle_app'] / cpu_median['wsgi_app']:.2f} in CPU per "
      f"request, {rps_median['saddle_app'] / rps_median['wsgi_app']:.2f} in throughput; "
      f"Saddle / Flask throughput: {rps_median['saddle_app'] / rps_median['flask_app']:.2f}.")
EOF
    rm -f "$raw"
    cat "$ROOT/bench/results/saddle-$backend.md" >&2
done
